"""Counting a process's round trips to the control plane: database, broker and HTTP (off unless enabled).

A PoP worker sits tens of milliseconds from the control plane, so every database statement, BEGIN,
COMMIT, connection ping, Redis command and HTTP request it makes there costs a full round trip; how
many an operation makes decides whether the WAN or OpenStack is its bottleneck. With
``MEAO_COUNT_ROUND_TRIPS=<file>`` set, :func:`enable` (called by ``meao worker``) appends one JSON
line per round trip to that file: its ``kind``, the operation occurrence bound at the time (the log's
op id), the ``phase`` of the job it belongs to (claim, a step, boundary, complete, heartbeat, …), the
thread and a monotonic time. Unset (production), nothing is patched and nothing is written.

What one round trip is, by kind (psycopg 3, redis-py, httpx):
- ``db.connect``: a new pooled connection (TCP, TLS, authentication: really several);
- ``db.ping``: the pool's pre-ping of a checked-out connection (``SELECT 1``, not an engine event);
- ``db.begin``: the BEGIN psycopg sends before the first statement of a transaction;
- ``db.sql``: one statement (``executemany`` counts once);
- ``db.commit`` / ``db.rollback``: only when a transaction is open (psycopg sends nothing otherwise);
- ``redis``: one write of one or more commands (a pipeline is one), with the commands' names;
  ``BRPOP`` is a long poll the consumer keeps open while idle, reported but told apart;
- ``http.connect`` (a new TCP connection) and ``http.request``, with the target's origin.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

ENV = "MEAO_COUNT_ROUND_TRIPS"

_phase: contextvars.ContextVar[str | None] = contextvars.ContextVar("meao_rtt_phase", default=None)
_lock = threading.Lock()
_out: Any = None
_patched: set[str] = set()
_RESP_NAME = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")


def enabled() -> bool:
    return _out is not None


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Attribute the round trips made inside the block (and in threads started with its context) to ``name``."""
    token = _phase.set(name)
    try:
        yield
    finally:
        _phase.reset(token)


def record(kind: str, detail: str | None = None) -> None:
    """Write one round trip of ``kind`` (no-op unless enabled)."""
    out = _out
    if out is None:
        return
    from meao.logs import current_op_id

    line = json.dumps({"kind": kind, "detail": detail, "op": current_op_id(), "phase": _phase.get(),
                       "thread": threading.current_thread().name, "t": time.monotonic()})
    with _lock:
        out.write(line + "\n")
        out.flush()


def enable(path: str | None = None) -> bool:
    """Start counting into ``path`` (default: $MEAO_COUNT_ROUND_TRIPS); False, doing nothing, when unset."""
    global _out
    path = path or os.environ.get(ENV)
    if not path:
        return False
    if _out is None:
        _out = open(path, "a", encoding="utf-8")  # noqa: SIM115 — kept open for the process's life
    _patch_redis()
    _patch_httpx()
    return True


def watch_engine(engine: Any) -> None:
    """Count ``engine``'s round trips (called for every engine :func:`meao.db.session.get_engine` makes)."""
    if _out is None or getattr(engine, "_meao_rtt", False):
        return
    from sqlalchemy import event

    engine._meao_rtt = True
    _patch_ping(type(engine.dialect))

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, record_) -> None:
        record("db.connect")  # TCP, TLS and authentication: several round trips, counted as one

    @event.listens_for(engine, "before_cursor_execute")
    def _sql(conn, cursor, statement, parameters, context, executemany) -> None:
        dbapi = conn.connection.dbapi_connection
        if _in_transaction_block(conn) and _idle(dbapi):
            record("db.begin")
        record("db.sql", " ".join(statement.split())[:160] if statement else None)

    @event.listens_for(engine, "commit")
    def _commit(conn) -> None:
        if not _idle(conn.connection.dbapi_connection):
            record("db.commit")

    @event.listens_for(engine, "rollback")
    def _rollback(conn) -> None:
        if not _idle(conn.connection.dbapi_connection):
            record("db.rollback")


def _in_transaction_block(conn: Any) -> bool:
    """psycopg opens a transaction (BEGIN) before a statement unless the connection autocommits."""
    dbapi = conn.connection.dbapi_connection
    return not getattr(dbapi, "autocommit", True)


def _idle(dbapi: Any) -> bool:
    """No transaction open on the server side (psycopg 3's view); SQLite and others: assume open."""
    info = getattr(dbapi, "info", None)
    status = getattr(info, "transaction_status", None)
    return status is not None and int(status) == 0  # pq.TransactionStatus.IDLE


def _patch_ping(dialect: type) -> None:
    """Pre-pings are not engine events: count them where the dialect sends them."""
    if dialect.__name__ + ".ping" in _patched:
        return
    _patched.add(dialect.__name__ + ".ping")
    original = dialect.do_ping

    def do_ping(self, dbapi_connection):
        record("db.ping")
        return original(self, dbapi_connection)

    dialect.do_ping = do_ping


def _patch_redis() -> None:
    if "redis" in _patched:
        return
    _patched.add("redis")
    from redis import connection

    original = connection.AbstractConnection.send_packed_command

    def send_packed_command(self, command, check_health=True):
        data = command if isinstance(command, bytes | bytearray) else b"".join(
            bytes(c) if not isinstance(c, bytes) else c for c in command)
        names = [n.decode().upper() for n in _RESP_NAME.findall(data[:4096])] or ["?"]
        record("redis.poll" if names == ["BRPOP"] else "redis", "+".join(names))
        return original(self, command, check_health)

    connection.AbstractConnection.send_packed_command = send_packed_command


def _patch_httpx() -> None:
    if "httpx" in _patched:
        return
    _patched.add("httpx")
    import httpx
    from httpcore._backends import sync as httpcore_sync

    send = httpx.Client.send

    def client_send(self, request, *args, **kwargs):
        record("http.request", f"{request.method} {request.url.scheme}://{request.url.netloc.decode()}"
                               f"{request.url.path}")
        return send(self, request, *args, **kwargs)

    httpx.Client.send = client_send
    connect = httpcore_sync.SyncBackend.connect_tcp

    def connect_tcp(self, host, port, *args, **kwargs):
        record("http.connect", f"{host}:{port}")
        return connect(self, host, port, *args, **kwargs)

    httpcore_sync.SyncBackend.connect_tcp = connect_tcp


def read(path: str) -> list[dict[str, Any]]:
    """The round trips a counting process wrote to ``path``."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
