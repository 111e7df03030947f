"""The database schema: apply the Alembic migrations in ``migrations/`` to the configured database."""

from __future__ import annotations

from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def db_upgrade(url: str | None = None) -> None:
    """Apply every Alembic migration to the configured database.

    API processes and workers all call this at start; on PostgreSQL an advisory lock makes concurrent
    starts take turns instead of racing to create the same tables. A database that cannot be reached
    (TLS, password, a file of the URL) stops the command with one message (``meao.transport``).
    """
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, pool, text

    from meao.config import get_settings
    from meao.transport import check_database_url, connect_database

    url = url or get_settings().database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    check_database_url(url)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with connect_database(engine) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7401932)"))  # released at commit
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()
