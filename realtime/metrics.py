"""`GET /metrics`: what an operator watches, in Prometheus' text format (prometheus_client).

Per process, one `Metrics` object (in `app[keys.METRICS]`, its own registry: nothing global,
so tests may run several apps in one process). Hot paths pay as little as possible:

- Socket.IO events are counted in `sio.acked` (one cached child per namespace and event, an
  `inc`; the ack latency is timed only for the reliable events of `RELIABLE`);
- the boards' fan-out, the dropped volatile frames, Redis reconnects and stream gaps are plain
  integers their owners bump already (or in one line); each owner hands them over through
  one small interface, `Counted.counters()`, and `PROMISED` says which counter of which owner
  feeds which metric; a sampler turns them into Prometheus counters once a second and at
  each scrape, so no delivery touches prometheus_client;
- the same sampler measures the event loop's lag and counts the connected sockets.

Several workers (`serve --workers N`) share one port with SO_REUSEPORT: a scrape reaches any
of them. The supervisor therefore sets `PROMETHEUS_MULTIPROC_DIR` (prometheus_client's
multiprocess mode) before starting them: every worker writes its values to files there, and
whichever one answers a scrape sums them all (see docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import socketio
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess
from redis.asyncio.client import PubSub

from realtime import keys
from realtime.errors import AppError

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SAMPLE_EVERY_S = 1.0
# Events whose ack says "stored": their latency is what a teacher or a CPE waits for.
RELIABLE = frozenset({("/boards", "op"), ("/chat", "send"), ("/attendance", "mark")})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
FORBIDDEN = ("Métriques réservées à la supervision : depuis la machine elle-même, ou avec "
             "le jeton (REALTIME_METRICS_TOKEN).")


class Counted(Protocol):
    """A part of the server that counts for the metrics page: it bumps plain ints on its own
    paths (no prometheus_client there) and hands them over, by name, when sampled."""

    def counters(self) -> Mapping[str, int]:
        """Every counter it keeps, as of now; each only ever grows (until a restart)."""
        ...


# What the page promises: (the owner's app key, the name of its counter, the metric that
# counter feeds). The owner must name that counter in `counters()` (an owner with two
# implementations, the database, names those of its kind): a test checks every
# entry, and that each moves when its feature acts.
PROMISED: tuple[tuple[web.AppKey[Any], str, Callable[[Metrics], Any]], ...] = (
    (keys.BOARDS, "frames_sent", lambda m: m.board_frames),
    (keys.BOARDS, "deliveries", lambda m: m.board_deliveries),
    (keys.BOARDS, "volatile_dropped", lambda m: m.volatile_dropped.labels("/boards")),
    (keys.SIO, "direct_packets", lambda m: m.direct_packets),
    (keys.SIO, "redis_reconnects", lambda m: m.redis_reconnects.labels("socketio")),
    (keys.SIO, "malformed_frames", lambda m: m.malformed_frames.labels("socketio")),
    (keys.SESSIONS, "closed_connections", lambda m: m.sessions_ended),
    (keys.DOCS, "relay_reconnects", lambda m: m.redis_reconnects.labels("yjs")),
    (keys.DOCS, "gaps_caught_up", lambda m: m.yjs_gaps),
    (keys.STREAMS, "reconnects", lambda m: m.redis_reconnects.labels("streams")),
    (keys.STREAMS, "gaps", lambda m: m.stream_gaps),
    (keys.DB, "wal_restarts", lambda m: m.wal_restarts),  # SQLite's
    (keys.DB, "unavailable", lambda m: m.db_unavailable),  # PostgreSQL's
    (keys.PRESENCE, "store_errors", lambda m: m.presence_errors),
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess(directory: Path) -> None:
    """Before starting workers: an empty directory for their value files, named in the
    environment they inherit (prometheus_client reads it when first imported)."""
    directory.mkdir(parents=True, exist_ok=True)
    # Only prometheus_client's own files (counter_<pid>.db, gauge_livesum_<pid>.db, …): a
    # directory an operator named may hold something else.
    for kind in ("counter", "gauge", "histogram", "summary"):
        for old in directory.glob(f"{kind}_*.db"):
            old.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)


def worker_gone(pid: int) -> None:
    """A worker exited: its live gauges (connected sockets) no longer count."""
    if multiprocess_dir():
        with contextlib.suppress(Exception):
            prom_multiprocess.mark_process_dead(pid)


class _CountingPubSub(PubSub):
    """A pub/sub that notes its re-connections on its owner's `reconnects`."""

    def __init__(self, connection_pool: Any, owner: Any) -> None:
        super().__init__(connection_pool)
        self._owner = owner

    async def on_connect(self, connection: Any) -> None:
        # redis-py registers this (as a weak bound method) once the first connection is
        # made, so it runs on re-connections only.
        self._owner.reconnects += 1
        await super().on_connect(connection)


def counting_pubsub(redis: Any, owner: Any) -> PubSub:
    """A new pub/sub on `redis` that counts on `owner.reconnects` the re-connections
    redis-py makes by itself: it re-establishes a dropped connection inside
    `get_message`/`listen` and subscribes again, so the listener never sees an error and a
    Redis restart would otherwise leave no trace. Made through redis-py's public `PubSub`
    constructor, as `redis.pubsub()` does."""
    return _CountingPubSub(redis.connection_pool, owner)


class Metrics:
    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        # In multiprocess mode the values live in files; the scrape reads them all through
        # a MultiProcessCollector, so the metrics themselves are registered nowhere.
        self.registry: CollectorRegistry | None = (None if self.multiprocess
                                                   else CollectorRegistry())
        r = self.registry
        self.connected = Gauge(
            "realtime_connected_sockets", "Connexions ouvertes, par espace de noms.",
            ["namespace"], registry=r, multiprocess_mode="livesum")
        self.events = Counter(
            "realtime_events", "Événements Socket.IO traités, par espace et événement.",
            ["namespace", "event"], registry=r)
        self.errors = Counter(
            "realtime_event_errors", "Événements refusés ou en échec, par code d'erreur.",
            ["namespace", "event", "code"], registry=r)
        self.ack_seconds = Histogram(
            "realtime_ack_seconds", "Délai avant l'accusé des événements fiables.",
            ["namespace", "event"], buckets=LATENCY_BUCKETS, registry=r)
        self.board_frames = Counter(
            "realtime_board_fanout_frames", "Trames d'opérations de tableau diffusées "
            "(une par tableau et par tick).", registry=r)
        self.board_deliveries = Counter(
            "realtime_board_fanout_deliveries", "Trames remises aux membres des tableaux.",
            registry=r)
        self.volatile_dropped = Counter(
            "realtime_volatile_dropped", "Messages volatils (pointeurs, vues) abandonnés "
            "sous la charge.", ["namespace"], registry=r)
        self.db_write_seconds = Histogram(
            "realtime_db_write_seconds", "Durée des transactions d'écriture (SQLite ou "
            "PostgreSQL).",
            ["kind"], buckets=LATENCY_BUCKETS, registry=r)
        self.db_write_batch = Histogram(
            "realtime_db_write_batch_size", "Événements écrits par transaction groupée.",
            buckets=BATCH_BUCKETS, registry=r)
        self.redis_reconnects = Counter(
            "realtime_redis_reconnects", "Reconnexions à Redis (pub/sub), par composant.",
            ["component"], registry=r)
        self.stream_gaps = Counter(
            "realtime_stream_gaps", "Trous détectés dans un flux (pub/sub perdu), comblés "
            "depuis l'historique.", registry=r)
        self.yjs_gaps = Counter(
            "realtime_yjs_gaps", "Mises à jour de cours jamais relayées (pub/sub perdu, "
            "processus arrêté entre écriture et publication), rattrapées depuis SQLite.",
            registry=r)
        self.fast_paths = Gauge(
            "realtime_fast_path", "Chemins rapides fondés sur des détails internes de "
            "bibliothèques : 1 actif, 0 remplacé par la voie publique (realtime/internals.py).",
            ["path"], registry=r, multiprocess_mode="min")
        self.yjs_refused = Counter(
            "realtime_yjs_refused", "Trames ou connexions /yjs refusées, par raison "
            "(malformed, structure, sync_flood, rate, text, origin, awareness, internal).",
            ["reason"], registry=r)
        self.direct_packets = Counter(
            "realtime_sio_direct_packets", "Paquets Socket.IO (accusés, émissions) écrits "
            "directement sur la websocket, sans la file d'engine.io.", registry=r)
        self.malformed_frames = Counter(
            "realtime_malformed_frames", "Trames mal formées reçues (refusées, la connexion "
            "fermée au-delà d'un seuil), par transport.", ["transport"], registry=r)
        self.sessions_ended = Counter(
            "realtime_session_ended_connections", "Connexions fermées parce que leur session "
            "a pris fin (déconnexion, nouveau code, expiration, compte désactivé).", registry=r)
        self.wal_restarts = Counter(
            "realtime_sqlite_wal_restarts", "Points de contrôle RESTART : le WAL a atteint "
            "sa taille limite et repart du début.", registry=r)
        self.placed = Counter(
            "realtime_board_connections_placed", "Connexions de tableau placées sur le "
            "processus du tableau (serve --workers N) : handed_over (confiée à ce processus), "
            "received (reçue d'un autre), home_unreachable (servie sur place, le processus du "
            "tableau ne répondant pas).", ["outcome"], registry=r)
        self.db_unavailable = Counter(
            "realtime_db_unavailable", "Requêtes refusées (« unavailable ») parce que "
            "PostgreSQL ne répondait pas (redémarrage, bascule).", registry=r)
        self.presence_entries = Gauge(
            "realtime_presence_entries", "Présences (appareil × portée) tenues et renouvelées "
            "par ce serveur.", registry=r, multiprocess_mode="livesum")
        self.presence_errors = Counter(
            "realtime_presence_store_errors", "Appels au stockage de présence en échec "
            "(Redis absent) : des présences peuvent expirer à tort.", registry=r)
        self.loop_lag = Histogram(
            "realtime_event_loop_lag_seconds", "Retard de la boucle d'événements.",
            buckets=LAG_BUCKETS, registry=r)
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._seen: dict[str, int] = {}
        self._promised = [(key, name, f"{i}:{name}", metric(self))
                          for i, (key, name, metric) in enumerate(PROMISED)]

    # --- hot-path helpers -----------------------------------------------------------------

    def handled(self, namespace: str, event: str, code: str | None, seconds: float) -> None:
        """One Socket.IO event done (`code`: its error, None when it succeeded)."""
        key = (namespace, event)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.events.labels(namespace, event),
                self.ack_seconds.labels(namespace, event) if key in RELIABLE else None)
        children[0].inc()
        if children[1] is not None and code is None:
            children[1].observe(seconds)
        if code is not None:
            self.errors.labels(namespace, event, code).inc()

    def wrote(self, kind: str, seconds: float, size: int) -> None:
        """One write transaction of the database, either engine (`Database.observer`)."""
        self.db_write_seconds.labels(kind).observe(seconds)
        if kind == "batch":
            self.db_write_batch.observe(size)

    # --- the sampler ----------------------------------------------------------------------

    def _delta(self, name: str, value: int, counter: Any) -> None:
        """Counters kept by their owners as plain ints, turned into Prometheus counters."""
        last = self._seen.get(name, 0)
        if value < last:  # the owner started again (a board service restarted in tests)
            last = 0
        if value > last:
            counter.inc(value - last)
        self._seen[name] = value

    def sample(self, app: web.Application) -> None:
        sio = app[keys.SIO]
        for namespace, rooms in list(sio.manager.rooms.items()):
            self.connected.labels(namespace).set(len(rooms.get(None, ())))
        for key, name, seen, counter in self._promised:
            owner: Counted | None = app.get(key)
            # An owner keeps the counters of its kind only (the database: SQLite's WAL
            # restarts, or PostgreSQL's refusals).
            value = owner.counters().get(name) if owner is not None else None
            if value is not None:
                self._delta(seen, value, counter)
        docs = app.get(keys.DOCS)
        if docs is not None:
            self.connected.labels("/yjs").set(docs.connections())
            for reason, n in docs.refused_counts().items():
                self._delta(f"yjs_refused:{reason}", n, self.yjs_refused.labels(reason))
        presence = app.get(keys.PRESENCE)
        if presence is not None:
            self.presence_entries.set(presence.held())
        placement = app.get(keys.PLACEMENT)  # serve --workers N only (tests/scale)
        if placement is not None:
            for outcome, n in placement.counters().items():
                self._delta(f"placed:{outcome}", n, self.placed.labels(outcome))

    async def run_sampler(self, app: web.Application) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(SAMPLE_EVERY_S)
            self.loop_lag.observe(max(0.0, loop.time() - before - SAMPLE_EVERY_S))
            try:
                self.sample(app)
            except Exception:  # a metric must never take the server down
                log.exception("metrics sample failed")

    # --- exposition -----------------------------------------------------------------------

    def exposition(self) -> bytes:
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


def _loopback(request: web.Request) -> bool:
    """Connected from this machine, and not relayed by a proxy (which would itself be on
    loopback): a forwarded request is treated as coming from outside."""
    if any(h in request.headers for h in ("X-Forwarded-For", "Forwarded", "X-Real-IP")):
        return False
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def allowed(request: web.Request) -> bool:
    token = request.app[keys.SETTINGS].metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True
    return _loopback(request)


async def metrics_endpoint(request: web.Request) -> web.Response:
    if not allowed(request):
        raise AppError("forbidden", FORBIDDEN)
    metrics = request.app[keys.METRICS]
    metrics.sample(request.app)
    body = (await asyncio.to_thread(metrics.exposition) if metrics.multiprocess
            else metrics.exposition())
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST,
                                            "Cache-Control": "no-store"})


async def _sampler(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[keys.METRICS].run_sampler(app), name="metrics-sampler")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def install(app: web.Application) -> Metrics:
    """Before every feature: `sio.acked` and the database report into it from the start."""
    from realtime import internals

    metrics = Metrics()
    app[keys.METRICS] = metrics
    for path, on in internals.self_check().items():
        metrics.fast_paths.labels(path).set(1 if on else 0)
    return metrics


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    app.cleanup_ctx.append(_sampler)
    app.router.add_get("/metrics", metrics_endpoint)
