"""Paged lists: the "handling of large query results" of ETSI GS NFV-SOL 013 clause 5.4.2.

meao chooses the page size (``MEAO_PAGE_SIZE``, default 100, at most ``MAX_PAGE_SIZE``). A page that is
not the last carries ``Link: <…?nextpage_opaque_marker=…>; rel="next"``, the request's URL with its
other query parameters and the marker of the next page. The marker is opaque to clients: urlsafe
base64 of ``[version, list path, key]``, the key of the last row the page examined (``meao.db.keyset``).
It holds no secret: a forged one only moves where a list the caller may read starts.

MEC 009 ``filter`` works on the wire JSON, so a page reads rows in keyset batches until it has its
items, or the rows run out; a filter that matches few rows still gives full, correct pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import request

from meao.config import get_settings
from meao.db import keyset
from meao.db.keyset import Key, Window
from meao.problems import BadRequest

MARKER = "nextpage_opaque_marker"
_VERSION = 1
T = TypeVar("T")


@dataclass
class Page:
    """The items of one page and, unless it is the last, the key the next page starts after."""

    items: list[Any]
    next_after: Key | None


def collect(fetch: Callable[[Window], Sequence[T]], render: Callable[[T], Any],
            keep: Callable[[Any], bool] | None = None, key: Callable[[T], Key] = keyset.key) -> Page:
    """The page the request asks for: up to ``MEAO_PAGE_SIZE`` rendered rows that ``keep`` accepts.

    ``fetch`` reads the rows in a window of the list. A page is full only when one more kept row is
    seen, so the last page has no next; the next page starts after the last row examined before that
    one, so no row is examined twice by a filter that rejects it.
    """
    size = get_settings().page_size
    after, items = _requested_key(), []
    while True:
        rows = fetch(Window(after, size + 1))
        examined = None  # the last row examined; its key is computed once, when it is needed
        for row in rows:
            item = render(row)
            if keep is None or keep(item):
                if len(items) == size:
                    return Page(items, after if examined is None else key(examined))
                items.append(item)
            examined = row
        if len(rows) <= size:
            return Page(items, None)
        after = key(examined) if examined is not None else after


def link_header(page: Page, base: str) -> dict[str, str]:
    """``Link`` to the next page (the request's URL on ``base`` with its marker replaced), none on the last."""
    if page.next_after is None:
        return {}
    params = [(k, v) for k, v in request.args.items(multi=True) if k != MARKER]
    params.append((MARKER, _marker(page.next_after)))
    return {"Link": f'<{base}{request.script_root}{request.path}?{urlencode(params)}>; rel="next"'}


def _marker(after: Key) -> str:
    raw = json.dumps([_VERSION, request.path, list(after)], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _requested_key() -> Key | None:
    """The key the request's ``nextpage_opaque_marker`` carries (None without one)."""
    marker = request.args.get(MARKER)
    if marker is None:
        return None
    try:
        version, path, after = json.loads(base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise _bad_marker("it is not a marker meao gave") from exc
    if version != _VERSION or not isinstance(after, list):
        raise _bad_marker("it is from another version of meao")
    if path != request.path:
        raise _bad_marker(f"it belongs to the list {path}")
    return tuple(after)


def _bad_marker(why: str) -> BadRequest:
    return BadRequest(f"{MARKER}: {why}; request {request.path} without it and follow the Link header's "
                      'rel="next" for the next pages', title="Invalid paging marker")
