"""What the commands print on stdout: tables, JSON, YAML or bare values, chosen by ``-f`` and ``-c``.

Columns and fields keep the API's JSON names (``appDId``, ``onboardingState`` …); a command may add
derived cells (``row``), which table and value output show in place of the API's own values.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import click
import yaml

from meao.oss.cli.invocation import meta, stack, store

FORMATS = ("table", "json", "yaml", "value")


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``-f/--format`` and ``-c/--column``."""
    return stack(func, [
        click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                     expose_value=False, callback=store("format"), help="output format"),
        click.option("-c", "--column", "columns", multiple=True, metavar="COLUMN", expose_value=False,
                     callback=store("columns"), help="show this column / field (repeatable)"),
    ])


def selected_columns() -> tuple[str, ...]:
    """The columns ``-c`` asked for; empty when the command's defaults apply."""
    return tuple(meta().get("columns") or ())


def is_structured() -> bool:
    """True for ``-f json`` and ``-f yaml``, which print the API's values rather than derived cells."""
    return meta().get("format") in ("json", "yaml")


def cell(value: Any) -> str:
    """One value as a table or value-output cell (compact JSON for structures)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain aligned text table: a header line, a dashed rule, one line per row."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _emit(picked: Any, values: Iterable[str], headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    fmt = meta().get("format") or "table"
    if fmt == "json":
        click.echo(json.dumps(picked, indent=2))
    elif fmt == "yaml":
        click.echo(yaml.safe_dump(picked, sort_keys=False, allow_unicode=True).rstrip("\n"))
    elif fmt == "value":
        for value in values:
            click.echo(value)
    else:
        click.echo(render_table(headers, rows))


def emit_list(rows: list[dict[str, Any]], default_columns: Sequence[str]) -> None:
    """Print a list: ``default_columns`` unless -c selects others."""
    columns = list(selected_columns() or default_columns)
    picked = [{c: row.get(c) for c in columns} for row in rows]
    cells = [[cell(row[c]) for c in columns] for row in picked]
    _emit(picked, (" ".join(line) for line in cells), columns, cells)


def emit_one(resource: dict[str, Any]) -> None:
    """Print one resource as field/value pairs (every field unless -c selects some)."""
    picked = {f: resource.get(f) for f in selected_columns() or resource}
    _emit(picked, (cell(v) for v in picked.values()), ("Field", "Value"), [[f, cell(v)] for f, v in picked.items()])


def row(raw: dict[str, Any], derived: dict[str, Any]) -> dict[str, Any]:
    """Table / value output shows the derived cells; JSON / YAML keep the API's own values where both exist."""
    return {**derived, **raw} if is_structured() else {**raw, **derived}


def age(seconds: float | None) -> str:
    """A short age for a table cell: ``4.2s``, ``17m``, ``3.5h``."""
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.1f}h"


def since(stamp: str | None) -> float | None:
    """Seconds from an ISO 8601 time stamp until now (never negative); None without a stamp."""
    if not stamp:
        return None
    return max(0.0, time.time() - datetime.fromisoformat(stamp).timestamp())
