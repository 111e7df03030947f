"""The MEP as a web app: Mp1 (MEC 011) and Mm5 (meao's) from our OpenAPI files, and the Mp1 token endpoint.

Two ways to run it:

- ``meao serve`` mounts it for every host of the inventory that has no ``mep_url`` (``add_mep_apis``);
  the quickstart stays one command.
- ``meao mep serve --host-id POP`` serves one PoP's MEP on its own (``create_mep_app``), near the
  PoP's OpenStack; the host's ``mep_url`` in the inventory points the MEPM-V and the apps at it.

Either way the MEP keeps its state in the project's database, so a restart loses nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import yaml
from connexion import FlaskApp
from connexion.options import SwaggerUIOptions

from meao import OPENAPI_DIR
from meao.api.security import prepare_spec
from meao.api.validation import document_statuses, validator_map
from meao.config import Settings
from mecpm.mep import api, security
from mecpm.mep.registry import MepScope

MP1_SPECS = (("mp1-app-support.yaml", "/mec_app_support/v1"), ("mp1-service-mgmt.yaml", "/mec_service_mgmt/v1"))
MM5_SPEC = ("mm5.yaml", "/mm5/v1")


def _mp1_spec(name: str) -> dict[str, Any]:
    # Mp1 always needs the app's own token, whatever MEAO_AUTH says of meao's APIs
    return yaml.safe_load((OPENAPI_DIR / name).read_text(encoding="utf-8"))


def add_mep_apis(app: FlaskApp, settings: Settings, scope: MepScope | None = None,
                 public_url: str | None = None) -> None:
    """Serve a MEP in ``app``: for ``scope`` (default: the hosts without a mep_url), reached at ``public_url``."""
    # links and credentials name the configured URL, never the request's Host header (an app could
    # otherwise point other apps' links elsewhere)
    api.configure(scope or MepScope(), public_url or settings.public_url)
    options = SwaggerUIOptions(swagger_ui=True)
    for name, base in MP1_SPECS:
        spec = _mp1_spec(name)
        document_statuses(spec, base)
        app.add_api(spec, base_path=base, strict_validation=True,
                    validate_responses=settings.validate_responses, swagger_ui_options=options)
    name, base = MM5_SPEC
    app.add_api(prepare_spec(OPENAPI_DIR / name, settings, base), base_path=base, strict_validation=True,
                validate_responses=settings.validate_responses, swagger_ui_options=options)
    app.add_url_rule(security.TOKEN_PATH, "mep_oauth2_token", security.token, methods=["POST"])


def app_from_environment() -> FlaskApp:
    """The app factory each ``meao mep serve --workers N`` process calls (MEAO_MEP_HOST_ID, MEAO_MEP_PUBLIC_URL)."""
    from meao.config import load_settings, set_settings
    from meao.logs import setup_logging

    setup_logging(os.environ.get("MEAO_LOG_LEVEL") or "INFO")
    settings = load_settings()
    set_settings(settings)
    return create_mep_app(settings, os.environ["MEAO_MEP_HOST_ID"], os.environ["MEAO_MEP_PUBLIC_URL"])


def create_mep_app(settings: Settings, host_id: str, public_url: str) -> FlaskApp:
    """The MEP of one PoP, on its own (``meao mep serve``)."""
    from meao.app import finish_app, settle_heap
    from meao.auth.tokens import check_settings

    @contextlib.asynccontextmanager
    async def lifespan(_app: FlaskApp) -> AsyncIterator[None]:
        settle_heap()
        yield

    app = FlaskApp(__name__, specification_dir=str(OPENAPI_DIR), lifespan=lifespan, validator_map=validator_map())
    check_settings(settings)
    add_mep_apis(app, settings, MepScope(frozenset({host_id})), public_url)
    finish_app(app)
    return app
