"""Engines and sessions: one engine per database URL per process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from meao.config import get_settings


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

        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20)
    _ping_when_idle(engine)
    return engine


PING_IDLE_S = 5.0
"""A pooled connection idle this long is pinged before use; a busier one is not."""


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it has been idle ``PING_IDLE_S``.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one more round trip per request or job step,
    which a PoP worker 20 ms from its database pays in full. A connection in steady use has just proved
    alive; one that sat idle across a database restart or a dropped link has not, and is pinged. A ping
    that fails discards the connection, and the pool connects anew (DisconnectionError). A connection the
    database dropped within the last seconds fails its statement instead, and SQLAlchemy then invalidates
    the whole pool, so only that one use sees the error.
    """
    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn, record, _proxy) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # any failure of the ping means: use another connection
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc


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


@contextmanager
def read_scope() -> Iterator[Session]:
    """Reads without a transaction (AUTOCOMMIT): each statement one round trip, no BEGIN and COMMIT.

    For hot read-only paths that need no consistent snapshot across statements; never write in it.
    """
    engine = get_engine(get_settings().database_url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn, Session(bind=conn) as session:
        yield session
