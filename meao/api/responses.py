"""What every handler returns: Connexion's (body, status, headers), and list queries applied to a list.

Handlers parse, call one service function and render through ``meao.wire``; these helpers are the
render step's last line, so each status code carries the same headers everywhere.
"""

from __future__ import annotations

from typing import Any

from flask import request

from meao.api import query

JSON = {"Content-Type": "application/json"}
Reply = tuple[Any, int] | tuple[Any, int, dict[str, str]]
_QUERY_PARAMS = ("filter", "all_fields", "fields", "exclude_fields", "exclude_default")


def base_url() -> str:
    """The scheme and authority the client reached meao at: the base of every href meao answers with."""
    return request.host_url.rstrip("/")


def ok(body: Any) -> Reply:
    """200 with a JSON body."""
    return body, 200, JSON


def created(body: dict[str, Any]) -> Reply:
    """201 with the new resource and its ``Location`` (its ``_links.self``)."""
    return body, 201, {**JSON, "Location": body["_links"]["self"]["href"]}


def accepted(location: str | None = None) -> Reply:
    """202, with the ``Location`` of what tracks the accepted work when there is one."""
    return (None, 202, {"Location": location}) if location else (None, 202)


def no_content() -> Reply:
    """204."""
    return None, 204


def listing(items: list[dict[str, Any]], spec: str, schema: str, default_excluded: tuple[str, ...] = ()) -> Reply:
    """200 with ``items`` (of ``schema`` in ``spec``) filtered and trimmed by the request's MEC 009 query.

    ``filter`` is attribute-based filtering (MEC 009 clause 6.19); the others are attribute selectors
    (clause 6.18), of which ``default_excluded`` are left out unless asked for.
    """
    tree = query.attribute_tree(spec, schema)
    params = {k: request.args.get(k) for k in _QUERY_PARAMS}
    terms = query.parse_filter(params["filter"], tree) if params["filter"] else []
    return ok(query.select_fields([i for i in items if query.matches(i, terms)], params, tree, default_excluded))
