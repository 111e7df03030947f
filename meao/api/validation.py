"""Request validation beyond Connexion's: refuse with a 4xx what would otherwise crash a layer below.

- Connexion decodes a JSON body with the Content-Type's charset and lets the ``UnicodeDecodeError`` of
  bytes not in it (or the ``LookupError`` of a charset Python does not know) escape as a 500.
- A path with a line feed matches no Starlette mount (their ``.*`` stops at ``\\n``), falls through to
  Flask's router outside any Connexion operation and crashes there.
- PostgreSQL text cannot hold U+0000: a NUL in a query parameter or a JSON string fails the SQL.
- Connexion takes one of the values of a repeated query parameter that is not an array, so
  ``?fields=a&fields=b`` silently dropped ``a``; a repeated single-valued parameter is a 400.

No identifier, name or filter meao handles contains control characters, so such requests are 400s.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncGenerator
from email.utils import formatdate
from functools import lru_cache
from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem, UnsupportedMediaTypeProblem
from connexion.lifecycle import ConnexionRequest
from connexion.validators import VALIDATOR_MAP, JSONRequestBodyValidator, ParameterValidator
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meao.problems import problem

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NUL_ESCAPE = re.compile(rb"%00|\x00")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class JSONBodyValidator(JSONRequestBodyValidator):
    """Connexion's JSON body validator; undecodable bytes and U+0000 are a 400, an unknown charset a 415."""

    async def _parse(self, stream: AsyncGenerator[bytes, None], scope: Scope) -> Any:
        raw = b"".join([message async for message in stream])
        try:
            text = raw.decode(self._encoding)
        except LookupError as exc:
            raise UnsupportedMediaTypeProblem(
                detail=f"charset {self._encoding!r} of the Content-Type is unknown; send UTF-8 JSON") from exc
        except UnicodeDecodeError as exc:
            detail = f"the request body is not valid {self._encoding}: {exc.reason} at byte {exc.start}"
            raise BadRequestProblem(detail=detail) from exc
        if not text:
            return None
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadRequestProblem(detail=f"the request body is not JSON: {exc}") from exc
        if _has_nul(body):
            raise BadRequestProblem(detail="a string of the request body contains U+0000 (NUL); meao accepts "
                                           "no NUL characters")
        return body


class SingleValuedQueryValidator(ParameterValidator):
    """Connexion's parameter validator; a query parameter that is not an array may be given once."""

    def validate_request(self, request: ConnexionRequest) -> None:
        raw = QueryParams(request.scope.get("query_string", b""))  # request.query_params is already parsed
        for param in self.parameters.get("query", []):
            if (param.get("schema") or {}).get("type") == "array":
                continue
            given = len(raw.getlist(param["name"]))
            if given > 1:
                raise BadRequestProblem(detail=f"query parameter {param['name']} is given {given} times; it "
                                               "takes a single value")
        super().validate_request(request)


def validator_map() -> dict[str, Any]:
    """Connexion's validator map with our validators (pass as ``FlaskApp(validator_map=…)``)."""
    bodies = MediaTypeDict({**VALIDATOR_MAP["body"], "*/*json": JSONBodyValidator})
    return {**VALIDATOR_MAP, "parameter": SingleValuedQueryValidator, "body": bodies}


class RequestTargetGuard:
    """ASGI middleware (before routing): a path with control characters or a query with NUL is a 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if _CONTROL.search(scope.get("path", "")):
                raise BadRequestProblem(detail="the request path contains control characters (U+0000-U+001F, "
                                               "U+007F); no meao resource identifier has any")
            if _NUL_ESCAPE.search(scope.get("query_string", b"")):
                raise BadRequestProblem(detail="the query string contains U+0000 (NUL); meao accepts no NUL "
                                               "characters")
        await self.app(scope, receive, send)


# spelt as the standards and RFCs spell them, where title case would not
_SPECIAL_HEADERS = {b"etag": b"ETag", b"www-authenticate": b"WWW-Authenticate", b"content-md5": b"Content-MD5"}


def canonical_header(name: bytes) -> bytes:
    """``content-type`` → ``Content-Type``, ``etag`` → ``ETag``: the casing clients written against the
    standard look up literally (HTTP header names are case-insensitive, but not every client is)."""
    lower = name.lower()
    return _SPECIAL_HEADERS.get(lower) or b"-".join(part[:1].upper() + part[1:] for part in lower.split(b"-"))


# how every meao server runs uvicorn: its httptools implementation lowercases every header name it writes
# (h11 writes them as CanonicalHeaders spelt them), and its own Date and Server headers are lowercase
# (CanonicalHeaders sends Date; no Server header advertises what runs)
UVICORN_OPTIONS: dict[str, Any] = {"http": "h11", "date_header": False, "server_header": False}


@lru_cache(maxsize=2)
def _http_date(second: int) -> bytes:
    return formatdate(second, usegmt=True).encode()


class CanonicalHeaders:
    """ASGI middleware: response header names go out canonically cased (the ASGI stack writes them in
    lowercase), with the Date header (RFC 9110 clause 6.6.1); the server runs with ``UVICORN_OPTIONS``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_canonical(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [(canonical_header(k), v) for k, v in message.get("headers", [])]
                message["headers"].append((b"Date", _http_date(int(time.time()))))
            await send(message)

        await self.app(scope, receive, send_canonical)


# (API base path, operationId) → the status codes its OpenAPI file documents ("404", "4XX", "default")
_documented: dict[tuple[str, str], frozenset[str]] = {}
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")  # of an OpenAPI path item


def document_statuses(spec: dict[str, Any], base: str) -> None:
    """Record what each operation of ``spec`` (served at ``base``) documents, for UndocumentedStatusGuard."""
    for item in (spec.get("paths") or {}).values():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation and operation.get("operationId"):
                _documented[(base.rstrip("/"), operation["operationId"])] = frozenset(
                    str(code) for code in operation.get("responses") or {})


def documented(base: str, operation_id: str, status: int) -> bool | None:
    """Whether the operation's OpenAPI file documents ``status``; None for an operation not recorded."""
    codes = _documented.get((base.rstrip("/"), operation_id))
    if codes is None:
        return None
    return str(status) in codes or f"{status // 100}XX" in codes or "default" in codes


class UndocumentedStatusGuard:
    """ASGI middleware, on where answers are checked against the OpenAPI files (MEAO_VALIDATE_RESPONSES,
    on in the tests): a status the operation does not document becomes a 500 naming it, so every test that
    reaches one fails, as a body that does not match its schema does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extensions = scope.setdefault("extensions", {})  # Connexion's routing records the operation here
        replaced = False

        async def send_checked(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return
            if message["type"] == "http.response.start" and message["status"] != 500:
                routing = extensions.get("connexion_routing") or {}
                base, operation = routing.get("api_base_path"), routing.get("operation_id")
                if base is not None and operation and documented(base, operation, message["status"]) is False:
                    replaced = True
                    body = json.dumps(problem(500, "Undocumented status", f"{operation} answered "
                                              f"{message['status']}, which its OpenAPI file does not document")).encode()
                    await send({"type": "http.response.start", "status": 500, "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"content-length", str(len(body)).encode())]})
                    await send({"type": "http.response.body", "body": body})
                    return
            await send(message)

        await self.app(scope, receive, send_checked)
