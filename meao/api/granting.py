"""Handlers of the granting API (MEC 010-2 clause 7.5): parse, call, render."""

from __future__ import annotations

from typing import Any

from flask import request

from meao.lcm import grants

JSON = {"Content-Type": "application/json"}


def create_grant(body: dict[str, Any]):
    """POST /grants → 201 Grant + Location (meao decides synchronously)."""
    grant = grants.create_grant(body, request.host_url)
    return grant, 201, {**JSON, "Location": grant["_links"]["self"]["href"]}


def get_grant(grantId: str):
    """GET /grants/{grantId} → 200 Grant, or 202 while still being decided."""
    grant = grants.get_grant(grantId)
    if grant is None:
        return None, 202, {**JSON, "Location": f"{request.host_url.rstrip('/')}/granting/v1/grants/{grantId}"}
    return grant, 200, JSON
