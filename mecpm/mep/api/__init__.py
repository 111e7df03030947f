"""The MEP's HTTP handlers: Mp1 (``app_support``, ``service_mgmt``, MEC 011) and Mm5 (``mm5``, meao's).

``configure`` says which hosts this process's MEP serves and at which URL; the handlers read it through
``scope()`` and ``base()``.
"""

from __future__ import annotations

from typing import Any

from flask import request

from meao.db.models import MepApp
from meao.problems import NotFound
from mecpm.mep import registry
from mecpm.mep.registry import MepScope
from mecpm.mep.security import caller, require_self

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


def own_app(session: Any, app_instance_id: str, lock: bool = False) -> MepApp:
    """The calling app itself, named in the URI: 404 when no app has that id here, 403 when another has."""
    if caller() != app_instance_id and session.get(MepApp, app_instance_id) is None:
        raise NotFound(f"application instance {app_instance_id} is not registered at this MEP")
    require_self(app_instance_id)
    return registry.get_app(session, _scope, app_instance_id, lock=lock)
