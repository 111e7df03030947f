"""Alembic environment: the URL comes from ``meao db upgrade`` (MEAO_DATABASE_URL or the default)."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from meao.db.models import Base

config = context.config
target_metadata = Base.metadata


def _migrate(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")  # `meao db upgrade` passes its (locked) connection
    if given is not None:
        _migrate(given)
        return
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}),
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        _migrate(connection)


run_migrations_online()
