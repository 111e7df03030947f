"""Keyset pagination: the rows of a list after a key, in an order that is unique, stable and indexed.

A listed model names its order once, ``list_order`` (e.g. ``("created_at", "id")``), and an index on it
(migration 0012). A page reads ``WHERE (created_at, id) > (:after) ORDER BY created_at, id LIMIT n``: the
cost is the page's, however long the table, and rows inserted or deleted meanwhile move no other row, so
a client walking the pages sees every row that existed throughout exactly once. (A row inserted while
the walk is under way shows up or not, depending on where its key falls.)

Keys cross the wire inside ``nextpage_opaque_marker`` (``meao.api.paging``) as JSON values: timestamps
as ISO 8601 text, which ``window`` reads back with the column's type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Select, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from meao.db.models import Base
from meao.problems import BadRequest

Key = tuple[Any, ...]  # JSON values: str, int, or a timestamp as ISO 8601 text


@dataclass(frozen=True)
class Window:
    """Which rows of a list to read: those after ``after`` (all when None), at most ``limit`` (None: all)."""

    after: Key | None = None
    limit: int | None = None


ALL = Window()


def _columns(model: type[Base]) -> list[InstrumentedAttribute[Any]]:
    return [getattr(model, name) for name in model.list_order]  # type: ignore[attr-defined]


def _sql_value(column: InstrumentedAttribute[Any], value: Any) -> Any:
    if isinstance(column.type, DateTime):
        if not isinstance(value, str):
            raise TypeError(f"{column.key} is not a timestamp")
        return datetime.fromisoformat(value)
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise TypeError(f"{column.key} is neither text nor a number")
    return value


def window(stmt: Select[Any], model: type[Base], win: Window, order: tuple[str, ...] | None = None) -> Select[Any]:
    """``stmt`` (which selects ``model``) ordered by ``order`` (default ``model.list_order``), cut to ``win``.

    A key that does not fit the order (wrong length or types: a marker of another list, or forged) is a
    BadRequest telling the client to start over.
    """
    columns = [getattr(model, name) for name in order] if order else _columns(model)
    if win.after is not None:
        try:
            if len(win.after) != len(columns):
                raise ValueError(f"{len(win.after)} values for {len(columns)} columns")
            after = [literal(_sql_value(c, v), c.type) for c, v in zip(columns, win.after, strict=True)]
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"nextpage_opaque_marker does not fit this list ({exc}); request the list "
                             "without it and follow the Link headers", title="Invalid paging marker") from exc
        stmt = stmt.where(tuple_(*columns) > tuple_(*after))
    stmt = stmt.order_by(*columns)
    return stmt if win.limit is None else stmt.limit(win.limit)


def key(row: Any, model: type[Base] | None = None) -> Key:
    """The key of ``row`` (an object of ``model``, or a row of its table) in the model's list order, as
    JSON values."""
    values = (getattr(row, name) for name in (model or row).list_order)  # type: ignore[attr-defined]
    return tuple(v.isoformat() if isinstance(v, datetime) else v for v in values)
