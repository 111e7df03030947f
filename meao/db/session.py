"""Engines and sessions: one engine per database URL per process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
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
    engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    roundtrips.watch_engine(engine)
    return engine


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
