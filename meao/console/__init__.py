"""meao's browser console: static pages under ``/console/`` (``meao.console.web``) reading one snapshot of
the whole installation, ``GET /ops/v1/console`` (``meao.console.views``), and acting through the existing
REST APIs."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from meao.auth.scopes import ALL_SCOPES
from meao.auth.tokens import Principal
from meao.config import get_settings

HEARTBEAT_FRESH_S = 10.0  # a worker heard of within this long: its exact heartbeat age does not change the tag


def _tagged(body: dict[str, Any]) -> dict[str, Any]:
    """What the entity tag covers: the body without ``generatedAt`` and with each worker's heartbeat age
    coarsened (heartbeats come every ~2 s: "fresh" below HEARTBEAT_FRESH_S, else whole tens of seconds), so
    two computations of a quiet installation share their tag and a polling page gets 304s."""
    def worker(w: dict[str, Any]) -> dict[str, Any]:
        age = w.get("heartbeatAgeS")
        return {**w, "heartbeatAgeS": age if age is None else
                "fresh" if age < HEARTBEAT_FRESH_S else int(age // HEARTBEAT_FRESH_S)}

    pops = [{**p, "workers": [worker(w) for w in p.get("workers") or []]} for p in body.get("pops") or []]
    return {**{k: v for k, v in body.items() if k != "generatedAt"}, "pops": pops}


def snapshot(tenant: str | None, principal: Principal | None) -> tuple[dict[str, Any], str]:
    """The console snapshot for a caller of ``tenant`` (None: every tenant), with its ``viewer``, and the
    body's entity tag: a weak one (``W/"…"``, RFC 9110 clause 8.8.1), since bodies that differ only in
    ``generatedAt`` and in fresh heartbeat ages share it (see ``_tagged``): equivalent, not byte-equal."""
    from meao.console.views import cached_snapshot
    from meao.wire import ops as wire

    # MEAO_AUTH=none opens every operation; an operation opened by MEAO_AUTH_OPEN_OPERATIONS only itself
    open_scopes = list(ALL_SCOPES) if get_settings().auth.mode == "none" else []
    body = {**cached_snapshot(tenant, wire.console_snapshot),
            "viewer": wire.console_viewer(principal, tenant, open_scopes)}
    digest = hashlib.sha256(orjson.dumps(_tagged(body), option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
    return body, f'W/"{digest}"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (or is ``*``): RFC 9110 clause 13.1.2, weak comparison."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or etag.removeprefix("W/") in (t.removeprefix("W/") for t in tags)
