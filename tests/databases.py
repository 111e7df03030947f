"""Fresh PostgreSQL databases on 127.0.0.1:5432, for the tests and the benches alike.

Importing this module has no side effects (``tests.conftest`` sets the tests' defaults in the
environment, which a bench must not inherit).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def pg_database(prefix: str) -> Iterator[str]:
    """Create a database named ``<prefix>_<random>``, yield its SQLAlchemy URL, then drop it."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
