"""Idempotent inserts: ``INSERT … ON CONFLICT DO NOTHING``, the portable form of "add it unless it is there".

A row that many workers may add at once (a claim, a bookkeeping note) is inserted this way instead of
read-then-written: the database decides who inserted it, and nobody's transaction fails on a duplicate.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_if_absent(session: Session, model: type, **values: Any) -> bool:
    """Insert one row of ``model`` unless its primary key (or a unique key) is taken; True if inserted."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt = postgresql.insert(model).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(model).values(**values).on_conflict_do_nothing()
    else:
        raise NotImplementedError(f"insert_if_absent is written for PostgreSQL and SQLite, not {dialect}")
    # RETURNING, not rowcount: the ORM's insert path reports rowcount -1 on psycopg
    key = inspect(model).primary_key[0]
    return session.execute(stmt.returning(key)).first() is not None
