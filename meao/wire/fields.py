"""How a wire type declares its attributes: each wire name once, beside where its value comes from.

Modelled on openstacksdk's ``resource.Body('accessIPv4')``: a type is a tuple of ``Field``s in wire
order, and ``render`` turns a domain object into the type's JSON, leaving out attributes that are None.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Field:
    """One attribute: its ``wire`` name and its ``source``, a Python attribute name or a function of the object."""

    wire: str
    source: str | Callable[[Any], Any]

    def read(self, obj: Any) -> Any:
        """The attribute's value for ``obj``."""
        return self.source(obj) if callable(self.source) else getattr(obj, self.source)


def compact(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without its None-valued attributes (optional attributes are left out, not sent as null)."""
    return {k: v for k, v in body.items() if v is not None}


def render(fields: Iterable[Field], obj: Any, **more: Any) -> dict[str, Any]:
    """``obj`` in wire form (plus the attributes ``more`` computes), without the None-valued attributes."""
    return compact({**{f.wire: f.read(obj) for f in fields}, **more})


def python_names(fields: Iterable[Field], body: Mapping[str, Any], drop: Iterable[str] = ()) -> dict[str, Any]:
    """A wire body with the names of attribute-sourced fields turned into their Python names."""
    to_python = {f.wire: f.source for f in fields if isinstance(f.source, str)}
    dropped = set(drop)
    return {to_python.get(k, k): v for k, v in body.items() if k not in dropped}
