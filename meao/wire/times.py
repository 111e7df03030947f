"""How the wire forms write a moment: MEC TimeStamp (MEC 010-2 clause 6.2.5.4) and ISO 8601 (ops API)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utc(value: datetime) -> datetime:
    """A stored moment as an aware UTC datetime (SQLite hands back naive ones; meao stores UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _timestamp(ns: int) -> dict[str, int]:
    return {"seconds": ns // 1_000_000_000, "nanoSeconds": ns % 1_000_000_000}


def timestamp_of(value: datetime) -> dict[str, int]:
    """The TimeStamp of a stored moment (microsecond precision, as the database keeps it)."""
    return _timestamp(int(utc(value).timestamp() * 1_000_000) * 1000)


def timestamp_now() -> dict[str, int]:
    """The TimeStamp of now."""
    return _timestamp(time.time_ns())


def iso(value: datetime | None) -> str | None:
    """``2026-12-01T10:00:00Z``, or None."""
    return None if value is None else utc(value).isoformat().replace("+00:00", "Z")
