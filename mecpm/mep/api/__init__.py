"""The MEP's HTTP handlers: Mp1 (``app_support``, ``service_mgmt``, MEC 011) and Mm5 (``mm5``, meao's).

``configure`` says which hosts this process's MEP serves and at which URL; the handlers read it through
``scope()`` and ``base()``.
"""

from __future__ import annotations

from flask import request

from mecpm.mep.registry import MepScope

_scope = MepScope()
_public: str | None = None


def configure(scope: MepScope, public_url: str | None) -> None:
    """Serve ``scope``; ``public_url`` is where apps reach this MEP (None: as the request came in)."""
    global _scope, _public
    _scope, _public = scope, public_url.rstrip("/") if public_url else None


def scope() -> MepScope:
    """The hosts this process's MEP serves."""
    return _scope


def base() -> str:
    """The MEP's base URL, for the links it answers with."""
    return _public or request.host_url.rstrip("/")
