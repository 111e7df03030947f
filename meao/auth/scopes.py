"""The OAuth 2.0 scopes of meao's APIs (RFC 6749 clause 3.3): a read and a write scope per API.

The OpenAPI files name, per operation, the scope it needs; this module is the list a client may be
given and the one place that knows how a token spells its scopes.
"""

from __future__ import annotations

from collections.abc import Iterable

#: scope → what it allows (shown by ``meao auth client list`` and in the OpenAPI files)
SCOPES: dict[str, str] = {
    "app_pkgm:read": "Query application packages, their AppD and content, and package subscriptions",
    "app_pkgm:write": "Create, upload, enable/disable and delete packages; manage package subscriptions",
    "app_lcm:read": "Query application instances, LCM operation occurrences and LCM subscriptions",
    "app_lcm:write": "Create, instantiate, operate, terminate and delete application instances; "
                     "cancel/retry/fail operations; manage LCM subscriptions",
    "granting:read": "Read grants",
    "granting:write": "Request grants (a MEPM)",
    "ops:read": "Read the MEC host inventory, capacity, placements and the operations views",
    "ops:admin": "Change the MEC host inventory and run operator actions",
}
ALL_SCOPES: tuple[str, ...] = tuple(SCOPES)


class UnknownScope(ValueError):
    """A scope that meao does not define."""


def parse_scopes(value: str | Iterable[str] | None) -> frozenset[str]:
    """Scopes as a set, from a space-delimited ``scope`` string (RFC 6749) or a list (``scp`` claims)."""
    if value is None:
        return frozenset()
    items = value.split() if isinstance(value, str) else [str(item) for item in value]
    return frozenset(item for item in items if item)


def check_known(scopes: Iterable[str]) -> list[str]:
    """The scopes in meao's order; ``UnknownScope`` names any that meao does not define."""
    wanted = set(scopes)
    unknown = sorted(wanted - set(ALL_SCOPES))
    if unknown:
        raise UnknownScope(f"unknown scope(s) {', '.join(unknown)}; meao's scopes are {', '.join(ALL_SCOPES)}")
    return [scope for scope in ALL_SCOPES if scope in wanted]


def format_scopes(scopes: Iterable[str]) -> str:
    """The space-delimited ``scope`` value (RFC 6749 clause 3.3), in a stable order."""
    order = {scope: i for i, scope in enumerate(ALL_SCOPES)}
    return " ".join(sorted(set(scopes), key=lambda s: (order.get(s, len(order)), s)))
