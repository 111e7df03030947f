"""Handlers of the granting API (MEC 010-2 clause 7.5): parse, call, render.

meao decides every grant within the POST (synchronous mode, clause 7.5.1.3.1): the optional
asynchronous mode (202, then GET until decided) is not implemented.
"""

from __future__ import annotations

from typing import Any

from meao.api.responses import Reply, base_url, created, ok
from meao.lcm import grants


def create_grant(body: dict[str, Any]) -> Reply:
    """POST /grants → 201 Grant + Location."""
    return created(grants.create_grant(body, base_url()))


def get_grant(grantId: str) -> Reply:
    """GET /grants/{grantId} → 200 Grant."""
    return ok(grants.get_grant(grantId))
