"""Handlers of the granting API (MEC 010-2 clause 7.5): parse, call, render."""

from __future__ import annotations

from typing import Any

from meao.api.responses import JSON, Reply, base_url, created, ok
from meao.lcm import grants
from meao.wire.links import grant_href


def create_grant(body: dict[str, Any]) -> Reply:
    """POST /grants → 201 Grant + Location (meao decides synchronously)."""
    return created(grants.create_grant(body, base_url()))


def get_grant(grantId: str) -> Reply:
    """GET /grants/{grantId} → 200 Grant, or 202 while still being decided."""
    grant = grants.get_grant(grantId)
    if grant is None:
        return None, 202, {**JSON, "Location": grant_href(base_url(), grantId)}
    return ok(grant)
