"""What every handler returns: Connexion's (body, status, headers), and a page of a list with its query.

Handlers parse, call one service function and render through ``meao.wire``; these helpers are the
render step's last line, so each status code carries the same headers everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from flask import request

from meao.api import paging, query
from meao.db import keyset
from meao.db.keyset import Key, Window

JSON = {"Content-Type": "application/json"}
Reply = tuple[Any, int] | tuple[Any, int, dict[str, str]]
_QUERY_PARAMS = ("filter", "all_fields", "fields", "exclude_fields", "exclude_default")
T = TypeVar("T")


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


def listing(fetch: Callable[[Window], Sequence[T]], render: Callable[[T], dict[str, Any]], spec: str, schema: str,
            default_excluded: tuple[str, ...] = (), key: Callable[[T], Key] = keyset.key) -> Reply:
    """200 with a page of the list ``fetch`` reads, ``render``-ed as ``schema`` of ``spec``, filtered and
    trimmed by the request's MEC 009 query, with the ``Link`` to the next page (``meao.api.paging``).

    ``filter`` is attribute-based filtering (MEC 009 clause 6.19); the others are attribute selectors
    (clause 6.18), of which ``default_excluded`` are left out unless asked for.
    """
    tree = query.attribute_tree(spec, schema)
    params = {k: request.args.get(k) for k in _QUERY_PARAMS}
    terms = query.parse_filter(params["filter"], tree) if params["filter"] else []
    page = paging.collect(fetch, render, lambda item: query.matches(item, terms), key)
    body = query.select_fields(page.items, params, tree, default_excluded)
    return body, 200, {**JSON, **paging.link_header(page, base_url())}
