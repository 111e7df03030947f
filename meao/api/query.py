"""MEC 009 attribute-based filtering (clause 6.19) and attribute selectors (clause 6.18).

Works on the ETSI JSON representation, with attribute names checked against our OpenAPI schema, so
an unknown attribute is a 400 rather than an empty result.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import yaml

from meao import OPENAPI_DIR
from meao.problems import BadRequest

OPERATORS = {"eq", "neq", "in", "nin", "gt", "gte", "lt", "lte", "cont", "ncont"}
ANY = "*"  # marks a free-form object (KeyValuePairs): any sub-attribute is valid
# the tree of a resource with no schema of ours (an AppD file): every attribute name is accepted
ANY_TREE: dict[str, Any] = {}


@lru_cache(maxsize=8)
def attribute_tree(spec_file: str, schema: str) -> dict[str, Any]:
    """Nested dict of attribute names a schema allows (arrays are transparent, free objects are ANY)."""
    spec = yaml.safe_load((OPENAPI_DIR / spec_file).read_text("utf-8"))
    schemas = spec["components"]["schemas"]

    def walk(node: dict[str, Any], depth: int) -> dict[str, Any] | str | None:
        if depth > 12:
            return None
        if "$ref" in node:
            return walk(schemas[node["$ref"].rsplit("/", 1)[-1]], depth + 1)
        for key in ("allOf", "oneOf", "anyOf"):
            if key in node:
                merged: dict[str, Any] = {}
                for sub in node[key]:
                    got = walk(sub, depth + 1)
                    if isinstance(got, dict):
                        merged.update(got)
                return merged or None
        if node.get("type") == "array" and "items" in node:
            return walk(node["items"], depth + 1)
        if "properties" in node:
            return {name: walk(sub, depth + 1) for name, sub in node["properties"].items()}
        if node.get("type") == "object" or node.get("additionalProperties"):
            return ANY
        return None

    tree = walk(schemas[schema], 0)
    assert isinstance(tree, dict)
    return tree


def _check_path(tree: dict[str, Any], path: str, what: str) -> list[str]:
    parts = path.split("/")
    if not all(parts):
        raise BadRequest(f"{what}: {path!r} is not an attribute name (empty part)",
                         title="Invalid attribute" if what == "filter" else "Invalid attribute selector")
    node: Any = ANY if tree is ANY_TREE else tree
    for part in parts:
        if node == ANY:
            break
        if not isinstance(node, dict) or part not in node:
            raise BadRequest(f"{what}: attribute {path!r} is not an attribute of this resource",
                             title="Invalid attribute" if what == "filter" else "Invalid attribute selector")
        node = node[part]
    return parts


def _values_at(obj: Any, parts: list[str]) -> list[Any]:
    if not parts:
        return obj if isinstance(obj, list) else [obj]
    if isinstance(obj, list):
        return [v for item in obj for v in _values_at(item, parts)]
    if isinstance(obj, dict) and parts[0] in obj:
        return _values_at(obj[parts[0]], parts[1:])
    return []


def _compare(op: str, actual: Any, operands: list[str]) -> bool:
    text = "" if actual is None else str(actual).lower() if isinstance(actual, bool) else str(actual)
    if op == "eq":
        return text == operands[0]
    if op == "neq":
        return text != operands[0]
    if op == "in":
        return text in operands
    if op == "nin":
        return text not in operands
    if op in ("cont", "ncont"):
        hit = any(o in text for o in operands)
        return hit if op == "cont" else not hit
    try:
        a, b = float(text), float(operands[0])
    except ValueError:
        a, b = text, operands[0]  # type: ignore[assignment]
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]


def parse_filter(expr: str, tree: dict[str, Any]) -> list[tuple[str, list[str], list[str]]]:
    """Parse ``(op,attr,value[,value]*)[;...]``; 400 naming the fault when it is malformed."""
    terms = []
    for raw in expr.split(";"):
        m = re.fullmatch(r"\s*\(([^()]*)\)\s*", raw)
        if not m:
            raise BadRequest(f"filter: {raw!r} is not of the form (op,attribute,value)",
                             title="Invalid attribute-based filtering expression")
        fields = [f.strip() for f in m.group(1).split(",")]
        if len(fields) < 3 or fields[0] not in OPERATORS:
            raise BadRequest(f"filter: {raw!r}: expected (op,attribute,value) with op one of "
                             f"{', '.join(sorted(OPERATORS))}", title="Invalid attribute-based filtering expression")
        op, attr, operands = fields[0], fields[1], fields[2:]
        if op in ("eq", "neq", "gt", "gte", "lt", "lte") and len(operands) != 1:
            raise BadRequest(f"filter: operator {op} takes exactly one value in {raw!r}",
                             title="Invalid attribute-based filtering expression")
        terms.append((op, _check_path(tree, attr, "filter"), operands))
    return terms


def matches(item: dict[str, Any], terms: list[tuple[str, list[str], list[str]]]) -> bool:
    """True when every term holds (for arrays: some element satisfies the term; neq/nin: none violates)."""
    for op, parts, operands in terms:
        values = _values_at(item, parts)
        if op in ("neq", "nin", "ncont"):
            if not all(_compare(op, v, operands) for v in values):
                return False
        elif not values or not any(_compare(op, v, operands) for v in values):
            return False
    return True


def _remove(obj: Any, parts: list[str]) -> None:
    if isinstance(obj, list):
        for item in obj:
            _remove(item, parts)
    elif isinstance(obj, dict):
        if len(parts) == 1:
            obj.pop(parts[0], None)
        elif parts[0] in obj:
            _remove(obj[parts[0]], parts[1:])


def _within(path: list[str], other: list[str]) -> bool:
    """Whether one of the two attribute paths contains the other (``_links`` and ``_links/operate``)."""
    n = min(len(path), len(other))
    return path[:n] == other[:n]


def select_fields(items: list[dict[str, Any]], params: dict[str, str | None], tree: dict[str, Any],
                  default_excluded: tuple[str, ...]) -> list[dict[str, Any]]:
    """Apply all_fields / fields / exclude_fields / exclude_default (MEC 009 clause 6.18).

    ``default_excluded`` are attribute paths (``operationParams``, ``_links/operate``); one is kept when
    ``fields`` names it, a part of it or an attribute containing it.
    """
    all_fields = params.get("all_fields") is not None
    fields = [f for f in (params.get("fields") or "").split(",") if f]
    exclude = [f for f in (params.get("exclude_fields") or "").split(",") if f]
    if all_fields and (fields or exclude or params.get("exclude_default") is not None):
        raise BadRequest("all_fields cannot be combined with fields, exclude_fields or exclude_default",
                         title="Invalid attribute selector")
    if fields and exclude:
        raise BadRequest("fields and exclude_fields cannot be combined", title="Invalid attribute selector")
    for path in fields + exclude:
        _check_path(tree, path, "attribute selector")
    defaults = [d.split("/") for d in default_excluded]
    removals: list[list[str]] = []
    if not all_fields:
        if exclude:
            removals += [p.split("/") for p in exclude]
            if params.get("exclude_default") is not None:
                removals += defaults
        else:
            wanted = [f.split("/") for f in fields]
            removals += [d for d in defaults if not any(_within(d, w) for w in wanted)]
    for item in items:
        for parts in removals:
            _remove(item, parts)
    return items
