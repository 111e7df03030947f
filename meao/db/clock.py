"""The database's clock: what every lease, heartbeat and deadline is measured against.

Workers at a PoP, API processes and the reaper may run on machines whose clocks disagree. Stamping
and comparing with the database's own time removes the skew: ``db_now()`` is a SQL expression, not a
Python value, so ``UPDATE … SET heartbeat_at = db_now()`` and ``WHERE heartbeat_at < db_now(-30)``
both read the one clock every actor shares.

On SQLite the text matches what SQLAlchemy writes for a ``DateTime`` (``YYYY-MM-DD HH:MM:SS.ffffff``),
so stamps written from Python and from SQL compare and read back alike.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import DateTime
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal


class db_now(FunctionElement):
    """The database's current time, shifted by ``offset_s`` seconds (negative: in the past)."""

    type = DateTime(timezone=True)
    inherit_cache = True
    _traverse_internals: ClassVar[list] = [("offset_s", InternalTraversal.dp_plain_obj)]  # the offset is in the cache key

    def __init__(self, offset_s: float = 0, *args: Any) -> None:
        self.offset_s = float(offset_s)
        super().__init__(*args)


@compiles(db_now, "postgresql")
def _pg_now(element: db_now, compiler, **kw) -> str:
    # clock_timestamp(), not now(): now() is frozen at the start of the transaction
    if element.offset_s:
        return f"(clock_timestamp() + interval '{element.offset_s!r} seconds')"
    return "clock_timestamp()"


@compiles(db_now, "sqlite")
def _sqlite_now(element: db_now, compiler, **kw) -> str:
    # %f is SS.SSS; three more zeros give SQLAlchemy's microsecond text
    shift = f", '{element.offset_s:+.3f} seconds'" if element.offset_s else ""
    return f"(strftime('%Y-%m-%d %H:%M:%f', 'now'{shift}) || '000')"


@compiles(db_now)
def _default_now(element: db_now, compiler, **kw) -> str:
    if element.offset_s:
        raise NotImplementedError("db_now with an offset is written for PostgreSQL and SQLite only")
    return "CURRENT_TIMESTAMP"
