"""The path before the body: a request to a resource that does not exist is a 404 whatever its body.

Connexion validates the request body before the handler runs, so a malformed body sent to an unknown
``appInstanceId`` used to get 400, and which of the two a client got depended on its body. The standard
answers 404 when "a client provided a URI that cannot be mapped to a valid resource URI" (e.g. MEC 010-2
table 7.4.6.3.1-2), and the URI is the request's first part: this middleware, placed after the security
one (no existence oracle without a token) and before request validation, looks the path's resources up
first. A body error on an existing resource is still a 400, from the validation that follows.

A path parameter opts in with the OpenAPI extension ``x-meao-lookup``: the dotted name of the service
function the handlers call to load that resource, ``lookup(identifier, tenant)``, which raises NotFound.
The lookup is the handlers' own, not a copy. Only operations with a request body are checked: the
others reach their handler, which answers 404 before anything else, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connexion.middleware.abstract import RoutedAPI, RoutedMiddleware
from connexion.operations import AbstractOperation
from connexion.utils import get_function_from_name
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from meao.api.security import scope_tenant

EXTENSION = "x-meao-lookup"
Lookup = Callable[[str, str | None], Any]


class ResourceLookupOperation:
    """One operation: look up each opted-in path parameter's resource, then go on to validation."""

    def __init__(self, next_app: ASGIApp, lookups: list[tuple[str, Lookup]]) -> None:
        self.next_app = next_app
        self.lookups = lookups

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.lookups:
            params = scope.get("path_params") or {}
            tenant = scope_tenant(scope)
            for name, lookup in self.lookups:
                if name in params:
                    await run_in_threadpool(lookup, str(params[name]), tenant)  # NotFound → 404
        await self.next_app(scope, receive, send)


class ResourceLookupAPI(RoutedAPI[ResourceLookupOperation]):
    """The operations of one OpenAPI document, each with the lookups its path parameters ask for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_paths()

    def make_operation(self, operation: AbstractOperation) -> ResourceLookupOperation:
        lookups = []
        if operation.body_definition():
            lookups = [(p["name"], get_function_from_name(p[EXTENSION])) for p in operation.parameters
                       if p.get("in") == "path" and p.get(EXTENSION)]
        return ResourceLookupOperation(self.next_app, lookups)


class ResourceLookupMiddleware(RoutedMiddleware[ResourceLookupAPI]):
    """Add with ``position=MiddlewarePosition.BEFORE_VALIDATION``."""

    api_cls = ResourceLookupAPI
