"""Engines and sessions: one engine per database URL per process.

A worker at a PoP reaches the database over a WAN, where every round trip costs tens of milliseconds,
so a checked-out connection is not pinged (``SELECT 1``) each time: it is checked without one (has the
server closed it, or sent anything while it sat idle in the pool?), and pinged only when it has been
idle for longer than ``PING_IDLE_S``. A restarted or killed server closes its connections, which the
check sees; a connection that went quiet with no close (a cut link) is pinged after ``PING_IDLE_S``, and
the kernel's keepalive and user timeout (``PG_LIVENESS``) break it within about 30 s even mid-statement.
The pool hands out the connection used last, so a job's consecutive transactions find a fresh one.
"""

from __future__ import annotations

import select as select_io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, make_url
from sqlalchemy.orm import Session, sessionmaker

from meao.config import get_settings
from meao.db import roundtrips


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """The engine for ``url``; SQLite gets WAL and a busy timeout so API and worker threads coexist."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        roundtrips.watch_engine(engine)
        return engine
    given = make_url(url).query
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_use_lifo=True,
                           connect_args={k: v for k, v in PG_LIVENESS.items() if k not in given})
    _check_on_checkout(engine)
    roundtrips.watch_engine(engine)
    return engine


#: a pooled connection idle for longer than this is pinged before use (a round trip); fresher ones are not
PING_IDLE_S = 10.0

#: libpq's TCP liveness checks on every PostgreSQL connection, unless the database URL sets them itself. A
#: connection whose peer went silent (a cut WAN link, a vanished server) fails within about 30 s, whether it
#: was sending (``tcp_user_timeout``, ms: data left unacknowledged) or idle (keepalive probes from 10 s, 3
#: missed 5 s apart), instead of after TCP's retransmission limit (about 15 minutes); the pool then opens a
#: new one. No extra round trip: the kernel sends the probes, and only on a connection that has gone quiet.
PG_LIVENESS = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
               "tcp_user_timeout": 30000}


def _check_on_checkout(engine: Engine) -> None:
    """Hand out only live connections: closed or chatty ones are replaced, long-idle ones pinged first."""

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _fresh(dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection, record, proxy) -> None:
        if _server_spoke(dbapi_connection):  # a close, or a termination notice: it is dead
            raise exc.DisconnectionError("the database closed this pooled connection")
        if time.monotonic() - record.info.get("idle_since", float("-inf")) > PING_IDLE_S:
            try:
                ok = engine.dialect.do_ping(dbapi_connection)
            except Exception as err:
                raise exc.DisconnectionError(f"pooled connection failed its ping: {err}") from err
            if ok is False:
                raise exc.DisconnectionError("pooled connection failed its ping")


def _server_spoke(dbapi_connection: Any) -> bool:
    """True when the server sent something on an idle connection: an idle PostgreSQL session receives
    nothing, so readable data is an end of file or a notice that the server ends the session."""
    pgconn = getattr(dbapi_connection, "pgconn", None)
    if pgconn is None:
        return False
    if getattr(dbapi_connection, "closed", False):
        return True
    try:
        readable, _, _ = select_io.select([pgconn.socket], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


@lru_cache(maxsize=8)
def _factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A transaction: commit on success, roll back on any exception."""
    session = _factory(get_settings().database_url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dialect_name() -> str:
    """The configured database's dialect ("postgresql", "sqlite"): for SQL written for one of them."""
    return get_engine(get_settings().database_url).dialect.name


@contextmanager
def statement_scope() -> Iterator[Session]:
    """A session whose every statement is its own transaction (AUTOCOMMIT): no BEGIN and COMMIT round trips.

    For writes that are one statement (a fenced UPDATE, a CTE that fences and writes): a single
    statement is atomic by itself. Never for several writes that must land together.
    """
    engine = get_engine(get_settings().database_url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn, Session(bind=conn) as session:
        yield session


@contextmanager
def read_scope() -> Iterator[Session]:
    """Reads without a transaction (AUTOCOMMIT): each statement one round trip, no BEGIN and COMMIT.

    For hot read-only paths that need no consistent snapshot across statements; never write in it.
    """
    engine = get_engine(get_settings().database_url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn, Session(bind=conn) as session:
        yield session
