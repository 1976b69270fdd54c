"""`python -m realtime serve | migrate | demo | users …` (click)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from realtime.settings import Settings

T = TypeVar("T")


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    try:
        import uvloop

        return uvloop.run(coro_fn())  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - uvloop is not on Windows
        return asyncio.run(coro_fn())  # type: ignore[arg-type]


def _fail(message: str) -> None:
    click.echo(f"Erreur : {message}", err=True)
    sys.exit(2)


@click.group()
@click.option("--db", "db_path", type=click.Path(path_type=Path), default=None,
              help="Fichier SQLite (défaut : $REALTIME_DB ou ./data/ent.sqlite3).")
@click.pass_context
def cli(ctx: click.Context, db_path: Path | None) -> None:
    """Serveur temps réel de l'ENT des collèges."""
    settings = Settings.from_env()
    if db_path is not None:
        settings = settings.with_(db_path=db_path)
    ctx.obj = settings


@cli.command()
@click.option("--host", default=None,
              help="Adresse d'écoute (défaut : $REALTIME_HOST ou 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (défaut : $PORT ou 8080).")
@click.option("--workers", type=int, default=None,
              help="Processus sur le même port (défaut : $REALTIME_WORKERS ou 1) ; "
                   "plus d'un exige REDIS_URL.")
@click.pass_obj
def serve(settings: Settings, host: str | None, port: int | None, workers: int | None) -> None:
    """Lance le serveur HTTP + Socket.IO."""
    from realtime.workers import refusal, run_workers

    settings = settings.with_(host=host or settings.host, port=port or settings.port)
    n = settings.workers if workers is None else workers
    why = refusal(settings, n)
    if why:
        _fail(why)
    if n == 1:
        from realtime.node_guard import StartRefused
        from realtime.serve import run

        try:
            run(settings)
        except StartRefused as err:
            _fail(str(err))
        return
    sys.exit(run_workers(settings, n))


@cli.command()
@click.pass_obj
def migrate(settings: Settings) -> None:
    """Applique les migrations SQL en attente."""
    from realtime.db import open_database

    async def go() -> tuple[list[int], int]:
        db = await open_database(settings, migrate=False)
        try:
            return await db.migrate(), await db.schema_version()
        finally:
            await db.close()

    applied, version = _run(go)
    click.echo(f"Migrations appliquées : {applied or 'aucune'} ; schéma en version {version}.")


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo-accounts.json"),
              show_default=True, help="Fichier JSON des comptes de démonstration.")
@click.pass_obj
def demo(settings: Settings, out: Path) -> None:
    """Crée (ou remet en état) les données de démonstration des deux collèges pilotes."""
    from realtime.db import open_database
    from realtime.demo.plan import build_plan
    from realtime.demo.seed import seed, write_accounts

    plan = build_plan()

    async def go() -> dict[str, int]:
        import datetime as dt

        from realtime.demo.attendance import seed_history

        db = await open_database(settings)
        try:
            with click.progressbar(length=len(plan.people), label="Comptes de démonstration",
                                   show_pos=True, show_eta=True, file=sys.stderr) as bar:
                def progress(done: int, _total: int) -> None:
                    bar.update(done - bar.pos)

                counts = await seed(db, plan, progress=progress)
            click.echo("Écriture des emplois du temps et des conversations : fait.", err=True)
            # A few weeks of rolls and absences, so the vie scolaire has something to show.
            history = await seed_history(db, dt.datetime.now(settings.tz).date(), settings.tz)
            click.echo("Historique des appels des trois dernières semaines : fait.", err=True)
            return {**counts, "appels ajoutés": history["rolls"],
                    "absences ajoutées": history["absence_events"]}
        finally:
            await db.close()

    counts = _run(go)
    write_accounts(plan, out)
    click.echo(
        f"Données de démonstration prêtes dans {settings.db_path} : "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )
    click.echo(f"Comptes (identifiants et codes personnels) : {out}")


@cli.group()
def users() -> None:
    """Gestion des comptes."""


@users.command("add")
@click.argument("login")
@click.option("--role", required=True,
              type=click.Choice(["teacher", "student", "parent", "cpe", "staff", "admin"]))
@click.option("--name", required=True, help="Nom affiché, ex. « Sophie Lambert ».")
@click.option("--school", "uai", default=None, help="Code UAI de l'établissement.")
@click.option("--class", "class_name", default=None, help="Classe d'un élève, ex. « 6e A ».")
@click.option("--child", "children", multiple=True, help="Identifiant d'un enfant (parents).")
@click.option("--code", default=None, help="Code personnel (sinon un code est généré).")
@click.option("--external-id", default=None,
              help="Identifiant de la personne dans l'ENT (AAF ENTPersonJointure), pour le SSO.")
@click.pass_obj
def users_add(settings: Settings, login: str, role: str, name: str, uai: str | None,
              class_name: str | None, children: tuple[str, ...], code: str | None,
              external_id: str | None) -> None:
    """Ajoute un compte et affiche son code personnel."""
    from realtime.identity.accounts import AccountRow, import_rows

    row = AccountRow(login=login, role=role, name=name, uai=uai or "", code=code or "",
                     class_name=class_name or "", children=list(children),
                     external_id=external_id or "")
    result = _with_db(settings, lambda db: import_rows(db, settings, [row]))
    for login_, code_ in result:
        click.echo(f"{login_}\t{code_}")


@users.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--codes-out", type=click.File("w", encoding="utf-8"), default="-",
              help="Où écrire les codes générés (CSV login,code ; défaut : la sortie standard).")
@click.pass_obj
def users_import(settings: Settings, csv_file: Any, codes_out: Any) -> None:
    """Importe des comptes depuis un CSV (colonnes : login, role, name, uai, code, class,
    children, external_id). Tout ou rien : une ligne invalide et rien n'est importé."""
    from realtime.identity.accounts import import_rows, parse_csv

    rows = parse_csv(csv_file.read())
    result = _with_db(settings, lambda db: import_rows(db, settings, rows))
    from realtime.text import SafeCsvWriter

    out = SafeCsvWriter(codes_out, lineterminator="\n")
    out.writerow(["login", "code"])
    out.writerows(result)
    click.echo(f"{len(result)} compte(s) importé(s).", err=True)


@users.command("reset-code")
@click.argument("login")
@click.option("--code", default=None, help="Nouveau code (sinon un code est généré).")
@click.pass_obj
def users_reset_code(settings: Settings, login: str, code: str | None) -> None:
    """Donne un nouveau code personnel et ferme les sessions ouvertes du compte."""
    from realtime.identity.accounts import reset_code

    async def go(db: Any) -> str:
        new_code = await reset_code(db, settings, login, code)
        await _announce_user_ended(db, settings, login)
        return new_code

    new_code = _with_db(settings, go)
    click.echo(f"{login}\t{new_code}")


@cli.group()
def retention() -> None:
    """Conservation des données (docs/retention.md)."""


@retention.command("purge")
@click.option("--dry-run", is_flag=True,
              help="Compter ce qui serait supprimé, sans rien supprimer.")
@click.pass_obj
def retention_purge(settings: Settings, dry_run: bool) -> None:
    """Purge ce qui a dépassé sa durée de conservation et affiche un rapport par catégorie."""
    import time

    from realtime import retention as retention_mod

    try:
        retention_mod.Policy.from_settings(settings)
    except ValueError as err:
        _fail(str(err))
    report = _with_db(settings, lambda db: retention_mod.purge(db, settings, time.time(),
                                                               dry_run=dry_run))
    click.echo(report.text(settings.tz))


@cli.group()
def directory() -> None:
    """Annuaire : établissements, classes, élèves, responsables, personnels."""


@directory.command("import-aaf")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.option("--academy-prefix", default="",
              help="Préfixe des identifiants de l'académie (ex. « AIX » : AIX-2397809).")
@click.option("--dry-run", is_flag=True,
              help="Affiche le bilan sans rien écrire.")
@click.pass_obj
def directory_import_aaf(settings: Settings, folder: Path, academy_prefix: str,
                         dry_run: bool) -> None:
    """Importe un export complet de l'AAF (dossier des fichiers …_Complet_…_0000.xml)."""
    from realtime.directory.aaf.apply import AafError, import_aaf

    days = max(settings.aaf_delete_after_days, 365 * settings.attendance_retention_years)

    def progress(line: str) -> None:
        click.echo(line, err=True)

    try:
        summary = _with_db(settings, lambda db: import_aaf(
            db, folder, prefix=academy_prefix.strip(), dry_run=dry_run,
            delete_after_days=days, progress=progress))
    except AafError as err:
        _fail(str(err))
        return
    for line in summary.lines():
        click.echo(line)
@users.command("disable")
@click.argument("login")
@click.pass_obj
def users_disable(settings: Settings, login: str) -> None:
    """Désactive un compte : il ne peut plus se connecter et toutes ses connexions ouvertes
    sont fermées (avec REDIS_URL à l'instant, sinon en quelques secondes)."""
    _with_db(settings, lambda db: _identity_call(db, settings, "disable_user", login))
    click.echo(f"Compte « {login} » désactivé ; ses sessions sont fermées.")


@users.command("enable")
@click.argument("login")
@click.pass_obj
def users_enable(settings: Settings, login: str) -> None:
    """Réactive un compte désactivé."""
    _with_db(settings, lambda db: _identity_call(db, settings, "enable_user", login))
    click.echo(f"Compte « {login} » réactivé.")


async def _identity_call(db: Any, settings: Settings, method: str, login: str) -> Any:
    """Call an IdentityService account method from the command line: the same code the
    server runs, with a session bus that tells every running server over Redis."""
    from realtime.identity.codes import CodeHasher
    from realtime.identity.service import IdentityService
    from realtime.identity.sessions import SessionBus, channel_for
    from realtime.identity.tokens import TokenSigner
    from realtime.ratelimit import MemoryRateLimiter
    from realtime.redis_client import connect
    from realtime.shared import session_secret

    redis = connect(settings.redis_url) if settings.redis_url else None
    try:
        bus = SessionBus(db, redis, channel_for(settings.redis_prefix), recheck_s=0)
        service = IdentityService(
            db, CodeHasher(settings.kdf_time_cost, settings.kdf_memory_kib,
                           settings.kdf_parallelism),
            TokenSigner(await session_secret(settings, db), settings.token_ttl_s),
            per_login=MemoryRateLimiter(1, 1), per_address=MemoryRateLimiter(1, 1),
            sessions=bus)
        return await getattr(service, method)(login)
    finally:
        if redis is not None:
            await redis.aclose()


async def _announce_user_ended(db: Any, settings: Settings, login: str) -> None:
    from realtime.identity import store
    from realtime.identity.sessions import announce_ended, channel_for

    found = await store.user_by_login(db, login)
    if found:
        await announce_ended(settings.redis_url, channel_for(settings.redis_prefix),
                             users=[found[0].id])


def _with_db(settings: Settings, fn: Callable[[Any], Awaitable[T]]) -> T:
    from realtime.db import open_database
    from realtime.errors import AppError

    async def go() -> T:
        db = await open_database(settings)
        try:
            return await fn(db)
        finally:
            await db.close()

    try:
        return _run(go)
    except AppError as err:
        _fail(err.message)
        raise  # unreachable


def main() -> None:
    cli(prog_name="python -m realtime")


if __name__ == "__main__":  # pragma: no cover
    main()


@cli.group()
def calendar() -> None:
    """Calendrier scolaire d'un établissement (zone, fermetures)."""


@calendar.command("import")
@click.argument("uai")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Remplace toutes les fermetures existantes.")
@click.pass_obj
def calendar_import(settings: Settings, uai: str, path: Path, replace: bool) -> None:
    """Importe les fermetures d'un collège : CSV (debut;fin;libelle) ou iCalendar (.ics)."""
    import time

    from realtime.attendance.schooldays import CalendarService
    from realtime.db import open_database
    from realtime.directory import store as directory
    from realtime.errors import AppError

    data = path.read_bytes()

    async def go() -> dict[str, Any]:
        db = await open_database(settings)
        try:
            school = await directory.school_by_uai(db, uai.upper())
            if school is None:
                _fail(f"aucun établissement d'UAI {uai}.")
                raise AssertionError  # unreachable: _fail exits
            return await CalendarService(db, time.time).import_closures(
                None, school.id, data, path.name, replace)
        finally:
            await db.close()

    try:
        out = _run(go)
    except AppError as exc:
        _fail(exc.message)
        return
    click.echo(f"{out['read']} fermeture(s) lue(s), {out['added']} ajoutée(s).")


@calendar.command("show")
@click.argument("uai")
@click.pass_obj
def calendar_show(settings: Settings, uai: str) -> None:
    """Affiche la zone et les jours sans cours de l'année scolaire en cours."""
    import datetime as dt

    from realtime.attendance.schooldays import ZONE_LABELS, load_calendar
    from realtime.db import open_database
    from realtime.directory import store as directory

    async def go() -> list[str]:
        db = await open_database(settings)
        try:
            school = await directory.school_by_uai(db, uai.upper())
            if school is None:
                _fail(f"aucun établissement d'UAI {uai}.")
                raise AssertionError
            cal = await load_calendar(db, school.id)
            today = dt.date.today()
            start = dt.date(today.year if today.month >= 9 else today.year - 1, 9, 1)
            zone = ZONE_LABELS.get(cal.zone or "", "hors zone")
            lines = [f"{school.name} ({school.uai}) : {zone}"]
            end = dt.date(start.year + 1, 7, 10)
            lines += [f"{d} {why}" for d, why in cal.days_off(start, end)]
            return lines
        finally:
            await db.close()

    for line in _run(go):
        click.echo(line)


@calendar.command("zone")
@click.argument("uai")
@click.argument("zone", type=click.Choice(["A", "B", "C", "auto"], case_sensitive=False))
@click.pass_obj
def calendar_zone(settings: Settings, uai: str, zone: str) -> None:
    """Fixe la zone de vacances d'un collège (auto : celle du département de son UAI)."""
    from realtime.db import open_database
    from realtime.directory import store as directory

    async def go() -> None:
        db = await open_database(settings)
        try:
            school = await directory.school_by_uai(db, uai.upper())
            if school is None:
                _fail(f"aucun établissement d'UAI {uai}.")
                raise AssertionError
            value = None if zone.lower() == "auto" else zone.upper()
            from realtime.attendance.schooldays import set_zone

            async with db.transaction() as conn:
                await set_zone(conn, school.id, value)
        finally:
            await db.close()

    _run(go)
    click.echo(f"Zone de {uai.upper()} : {zone.upper() if zone.lower() != 'auto' else 'auto'}.")
