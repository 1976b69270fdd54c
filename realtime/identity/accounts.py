"""Creating accounts in bulk (CSV from the school's administration) and resetting codes.

All or nothing: every row is checked before anything is written, and the errors name the
line, so an office worker fixes the file and runs the import again.
"""

from __future__ import annotations

import csv
import io

import msgspec

from realtime.db import Database, unique_violation
from realtime.directory import store as directory
from realtime.errors import AppError
from realtime.identity import store
from realtime.identity.codes import CodeHasher, generate_code
from realtime.identity.model import Role
from realtime.identity.service import LOGIN_MAX_LEN, check_code
from realtime.settings import Settings
from realtime.text import clean_text

EXTERNAL_ID_MAX_LEN = 128
COLUMNS = ("login", "role", "name", "uai", "code", "class", "children", "external_id")


class AccountRow(msgspec.Struct):
    login: str
    role: str
    name: str
    uai: str = ""
    code: str = ""
    class_name: str = ""
    children: list[str] = []
    external_id: str = ""
    line: int = 0


def parse_csv(text: str) -> list[AccountRow]:
    """Comma or semicolon separated (French spreadsheets write ';'); children split by '|'."""
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    missing = {"login", "role", "name"} - set(reader.fieldnames or [])
    if missing:
        raise AppError("invalid", f"Colonnes manquantes : {', '.join(sorted(missing))}.")
    unknown = set(reader.fieldnames or []) - set(COLUMNS)
    if unknown:
        raise AppError("invalid", f"Colonnes inconnues : {', '.join(sorted(unknown))}.")
    rows = []
    for i, r in enumerate(reader, start=2):
        rows.append(
            AccountRow(
                login=(r.get("login") or "").strip(),
                role=(r.get("role") or "").strip(),
                name=(r.get("name") or "").strip(),
                uai=(r.get("uai") or "").strip().upper(),
                code=(r.get("code") or "").strip(),
                class_name=(r.get("class") or "").strip(),
                children=[c.strip() for c in (r.get("children") or "").split("|") if c.strip()],
                external_id=(r.get("external_id") or "").strip(),
                line=i,
            )
        )
    return rows


def _hasher(settings: Settings) -> CodeHasher:
    return CodeHasher(settings.kdf_time_cost, settings.kdf_memory_kib, settings.kdf_parallelism)


async def import_rows(
    db: Database, settings: Settings, rows: list[AccountRow]
) -> list[tuple[str, str]]:
    """Create every account or none; return (login, personal code) pairs."""
    errors: list[str] = []
    seen: set[str] = set()
    seen_external: set[str] = set()
    students_in_file = {r.login for r in rows if r.role == "student"}
    plans = []
    for r in rows:
        where = f"ligne {r.line}" if r.line else r.login
        problems = []
        try:
            role = Role(r.role)
        except ValueError:
            problems.append(f"rôle inconnu « {r.role} »")
            role = None
        if not r.login or len(r.login) > LOGIN_MAX_LEN or any(c.isspace() for c in r.login):
            problems.append("identifiant invalide")
        elif r.login.casefold() in seen or await store.user_by_login(db, r.login):
            problems.append(f"l'identifiant « {r.login} » existe déjà")
        seen.add(r.login.casefold())
        if not clean_text(r.name):
            problems.append("nom manquant")
        if r.external_id:
            if (len(r.external_id) > EXTERNAL_ID_MAX_LEN
                    or not r.external_id.isprintable() or r.external_id != r.external_id.strip()):
                problems.append("identifiant ENT (external_id) invalide")
            elif (r.external_id in seen_external
                  or await store.user_by_external_id(db, r.external_id)):
                problems.append(f"l'identifiant ENT « {r.external_id} » existe déjà")
            seen_external.add(r.external_id)
        if r.code:
            try:
                check_code(r.code)
            except AppError as err:
                problems.append(err.message)
        school = await directory.school_by_uai(db, r.uai) if r.uai else None
        if role not in (Role.ADMIN, Role.PARENT, None) and school is None:
            problems.append(f"établissement (UAI) inconnu « {r.uai} »")
        klass = None
        if role is Role.STUDENT:
            klass = await directory.class_by_name(db, school.id, r.class_name) if school else None
            if klass is None:
                problems.append(f"classe inconnue « {r.class_name} »")
        children: list[int | str] = []
        if role is Role.PARENT:
            if not r.children:
                problems.append("un responsable légal doit avoir au moins un enfant")
            for child in r.children:
                found = await store.user_by_login(db, child)
                if found and found[0].role is Role.STUDENT:
                    children.append(found[0].id)
                elif child in students_in_file:
                    children.append(child)
                else:
                    problems.append(f"élève inconnu « {child} »")
        if problems:
            errors.append(f"{where} : " + " ; ".join(problems))
        else:
            plans.append((r, role, school, klass, children, r.code or generate_code()))
    if errors:
        raise AppError("invalid", "Import refusé, rien n'a été modifié.\n" + "\n".join(errors))

    hasher = _hasher(settings)
    hashes = [await hasher.hash_async(code) for *_, code in plans]
    created: dict[str, int] = {}
    async with db.transaction() as conn:
        for (r, role, school, _k, _c, _code), code_hash in zip(plans, hashes, strict=True):
            try:
                user = await store.insert_user(
                    conn, login=r.login, role=role, name=clean_text(r.name),
                    school_id=school.id if school and role is not Role.PARENT else None,
                    code_hash=code_hash, external_id=r.external_id or None,
                )
            except Exception as exc:  # created since the checks (another node or process)
                what = unique_violation(exc)
                if what is None:
                    raise
                raise _taken_meanwhile(r, what) from exc
            created[r.login] = user.id
        for r, _role, _s, klass, children, _code in plans:
            if klass is not None:
                await directory.enroll(conn, created[r.login], klass.id)
            for child in children:
                child_id = created[child] if isinstance(child, str) else child
                await directory.link_guardian(conn, created[r.login], child_id)
    return [(r.login, code) for r, *_, code in plans]


def _taken_meanwhile(r: AccountRow, what: str) -> AppError:
    """The refusal for a row whose login or external id another import or node created
    after this one checked it (the whole import rolls back, as for any refused row)."""
    where = f"ligne {r.line}" if r.line else r.login
    taken = (f"l'identifiant ENT « {r.external_id} » existe déjà" if "external_id" in what
             else f"l'identifiant « {r.login} » existe déjà")
    return AppError("conflict", f"Import refusé, rien n'a été modifié.\n{where} : {taken}.")


async def reset_code(db: Database, settings: Settings, login: str, code: str | None) -> str:
    new_code = code or generate_code()
    check_code(new_code)
    found = await store.user_by_login(db, login)
    if not found:
        raise AppError("not_found", f"Aucun compte « {login} ».")
    code_hash = await _hasher(settings).hash_async(new_code)
    import time

    async with db.transaction() as conn:
        await store.set_code_hash(conn, found[0].id, code_hash)
        await store.revoke_user_sessions(conn, found[0].id, time.time())
    return new_code
