"""The MEAO web application: Connexion 3 (Flask flavour) serving our OpenAPI files."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
from connexion import FlaskApp
from connexion.exceptions import OAuthProblem, ProblemException
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from flask.json.provider import DefaultJSONProvider
from starlette.exceptions import HTTPException

from meao import OPENAPI_DIR
from meao.api import oauth2
from meao.api.errors import (
    http_error_handler,
    problem_error_handler,
    unauthorized_error_handler,
    unexpected_error_handler,
)
from meao.api.existence import ResourceLookupMiddleware
from meao.api.negotiation import AcceptGuardMiddleware
from meao.api.security import TOKEN_PATH, prepare_spec
from meao.api.validation import CanonicalHeaders, RequestTargetGuard, UndocumentedStatusGuard, validator_map
from meao.auth.tokens import check_settings as check_auth_settings
from meao.celery_app import all_queues, prepare_jobs
from meao.config import Settings, get_settings, set_settings
from meao.metrics import HttpMetricsMiddleware, register_system_collector
from meao.problems import ProblemError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def serve_duties(settings: Settings, embedded_worker: bool) -> Iterator[None]:
    """What a ``meao serve`` runs once beside its web processes: the embedded worker (no broker), or the
    workers' heartbeat monitor; the job dispatcher, the reaper and (embedded) the notification deliverer."""
    from meao.background import Background

    worker = None
    if not embedded_worker:
        from meao.ops.workers import heartbeat_monitor

        heartbeat_monitor()  # workers' heartbeat ages are known by the time someone asks
        # sends the jobs this process writes (and any left unsent), reaps lost attempts; workers deliver
        background = Background(settings, embedded=False, deliver=False)
    else:
        from meao.celery_app import start_embedded_worker

        worker = start_embedded_worker(settings, all_queues(settings))
        background = Background(settings, embedded=True)
    background.start()
    try:
        yield
    finally:
        background.stop()
        if worker:
            worker.stop(in_sighandler=False)
        from meao.ops.workers import stop_heartbeat_monitor

        stop_heartbeat_monitor()


def create_app(settings: Settings | None = None, *, embedded_worker: bool | None = None,
               duties: bool = True) -> FlaskApp:
    """Build the ASGI app. ``embedded_worker`` (default: when no broker is configured) runs jobs in-process.

    ``duties`` False leaves the worker and the background loops to another process (``serve_duties`` in
    the parent of ``meao serve --workers N``).
    """
    settings = settings or get_settings()
    set_settings(settings)
    prepare_jobs(settings)
    if embedded_worker is None:
        embedded_worker = settings.embedded_broker

    @contextlib.asynccontextmanager
    async def lifespan(_app: FlaskApp) -> AsyncIterator[None]:
        with serve_duties(settings, bool(embedded_worker)) if duties else contextlib.nullcontext():
            settle_heap()
            yield

    app = FlaskApp(__name__, specification_dir=str(OPENAPI_DIR), lifespan=lifespan,
                   validator_map=validator_map())
    check_auth_settings(settings)
    for spec, base in (("mm1-app-pkgm.yaml", "/app_pkgm/v1"), ("mm1-app-lcm.yaml", "/app_lcm/v1"),
                       ("granting.yaml", None), ("ops.yaml", None)):
        app.add_api(prepare_spec(OPENAPI_DIR / spec, settings, base), base_path=base, strict_validation=True,
                    validate_responses=settings.validate_responses,
                    swagger_ui_options=SwaggerUIOptions(swagger_ui=True))
    if settings.auth.mode == "local":
        app.add_url_rule(TOKEN_PATH, "oauth2_token", oauth2.token, methods=["POST"])
    from mecpm.mep.web import add_mep_apis

    add_mep_apis(app, settings)  # the MEP of every host without a mep_url of its own, in process
    from meao.console.web import add_console

    add_console(app)  # the browser console's pages (its data: GET /ops/v1/console)
    finish_app(app)
    return app


def settle_heap() -> None:
    """Once the app is built: move what start-up made (parsed specs, validators, routes: most of the heap)
    out of the garbage collector's reach, so that a full collection while serving walks only what
    requests made, not hundreds of thousands of objects that live as long as the process (a pause of
    tens of milliseconds in a request's latency otherwise)."""
    gc.collect()
    gc.freeze()


class WireJSON(DefaultJSONProvider):
    """Flask's JSON provider with answers encoded by orjson, several times faster than the standard
    library on a page of resources; what orjson refuses (an integer beyond 64 bits in a free-form
    attribute) is encoded as before. Request bodies are still parsed by the standard library."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        try:
            return orjson.dumps(obj, default=self.default, option=orjson.OPT_NON_STR_KEYS).decode()
        except orjson.JSONEncodeError:
            return super().dumps(obj, **kwargs)


def finish_app(app: FlaskApp) -> None:
    """What every meao web app has: request metrics, the request-target guard, path lookups before body
    validation (``meao.api.existence``), 406 for an unacceptable Accept, ProblemDetails for errors."""
    app.app.json = WireJSON(app.app)
    app.add_middleware(HttpMetricsMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(CanonicalHeaders, position=MiddlewarePosition.BEFORE_EXCEPTION)
    if get_settings().validate_responses:
        app.add_middleware(UndocumentedStatusGuard, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(RequestTargetGuard, position=MiddlewarePosition.BEFORE_SWAGGER)
    app.add_middleware(ResourceLookupMiddleware, position=MiddlewarePosition.BEFORE_VALIDATION)
    app.add_middleware(AcceptGuardMiddleware, position=MiddlewarePosition.BEFORE_VALIDATION)
    register_system_collector()
    app.add_error_handler(ProblemError, problem_error_handler)
    app.add_error_handler(OAuthProblem, unauthorized_error_handler)
    app.add_error_handler(ProblemException, http_error_handler)
    app.add_error_handler(HTTPException, http_error_handler)
    app.add_error_handler(Exception, unexpected_error_handler)


def app_from_environment() -> FlaskApp:
    """The app factory of each ``meao serve --workers N`` process: settings from the environment the
    parent prepared, and no duties of its own (the parent runs them)."""
    import os

    from meao.config import load_settings
    from meao.logs import setup_logging

    setup_logging(os.environ.get("MEAO_LOG_LEVEL") or "INFO")
    return create_app(load_settings(), embedded_worker=os.environ.get("MEAO_SERVE_EMBEDDED_WORKER") == "true",
                      duties=False)
