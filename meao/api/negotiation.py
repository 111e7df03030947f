"""Proactive content negotiation on ``Accept`` (RFC 9110 clause 12.5.1): the one place meao reads it.

A media range is parsed, not compared as a string: ``text/plain; charset=utf-8`` and ``text/plain;q=0.5``
both name text/plain. The most specific range that matches an offered type gives its quality, and a
quality of 0 means "not acceptable" (RFC 9110 clause 12.4.2). No ``Accept`` header (or one without a
single well-formed range, which RFC 9110 lets a server ignore) accepts anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from connexion.middleware.abstract import RoutedAPI, RoutedMiddleware
from connexion.operations import AbstractOperation
from flask import request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from meao.problems import NotAcceptable

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_RANGE = re.compile(rf"\s*({_TOKEN})/({_TOKEN})\s*")
_PARAM = re.compile(rf"\s*({_TOKEN})\s*=\s*({_TOKEN}|\"(?:[^\"\\]|\\.)*\")\s*")
_QVALUE = re.compile(r"0(\.\d{0,3})?|1(\.0{0,3})?")


@dataclass(frozen=True)
class MediaRange:
    """One element of ``Accept``: ``type/subtype`` (either may be ``*``), its parameters and its weight."""

    type: str
    subtype: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    def matches(self, media_type: MediaRange) -> bool:
        """Whether this range covers ``media_type``: same type and subtype (or wildcards), and every
        parameter this range names has the same value in ``media_type``."""
        return (self.type in ("*", media_type.type) and self.subtype in ("*", media_type.subtype)
                and all(media_type.params.get(k) == v for k, v in self.params.items()))

    @property
    def specificity(self) -> tuple[int, int, int]:
        """RFC 9110 clause 12.5.1: a more specific range overrides a less specific one."""
        return self.type != "*", self.subtype != "*", len(self.params)


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value[1:-1]) if value.startswith('"') else value


def _media_range(element: str) -> MediaRange | None:
    """One comma-separated element of ``Accept``, or None when it is malformed (it is then ignored)."""
    head, *rest = element.split(";")
    m = _RANGE.fullmatch(head)
    if not m or (m.group(1) == "*" and m.group(2) != "*"):
        return None
    params: dict[str, str] = {}
    q = 1.0
    for raw in rest:
        p = _PARAM.fullmatch(raw)
        if not p:
            return None
        name, value = p.group(1).lower(), _unquote(p.group(2))
        if name == "q":
            if not _QVALUE.fullmatch(value):
                return None
            q = float(value)
            break  # what follows the weight are accept-extensions, not media type parameters
        # the charset parameter's value is case-insensitive (RFC 9110 clause 8.3.2)
        params[name] = value.lower() if name == "charset" else value
    return MediaRange(m.group(1).lower(), m.group(2).lower(), params, q)


def parse_media_type(value: str) -> MediaRange:
    """A media type meao offers (``text/plain; charset=utf-8``), parsed like an Accept element."""
    parsed = _media_range(value)
    if parsed is None:
        raise ValueError(f"not a media type: {value!r}")
    return parsed


def parse_accept(header: str | None) -> list[MediaRange]:
    """The well-formed media ranges of an ``Accept`` value; empty when there are none."""
    if not header:
        return []
    # a quoted parameter value may hold a comma: split outside quotes only
    elements = re.findall(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+', header)
    return [r for r in map(_media_range, elements) if r is not None]


def quality(media_type: str, header: str | None) -> float:
    """How much ``header`` (an Accept value) wants ``media_type``: the weight of the most specific
    matching range, 0 when none matches, 1 when ``header`` names no range at all."""
    ranges = parse_accept(header)
    if not ranges:
        return 1.0
    offered = parse_media_type(media_type)
    matching = [r for r in ranges if r.matches(offered)]
    return max(matching, key=lambda r: r.specificity).q if matching else 0.0


def preferred(offers: list[str], header: str | None) -> str | None:
    """The offer ``header`` (an Accept value) weighs highest, the earlier one on a tie; None when it
    accepts none of them."""
    weighed = [(quality(offer, header), -i, offer) for i, offer in enumerate(offers)]
    q, _, best = max(weighed, default=(0.0, 0, None))
    return best if q > 0 else None


def request_prefers(offers: list[str]) -> str | None:
    """The offer the request's ``Accept`` weighs highest; None when it accepts none (the caller's 406)."""
    return preferred(offers, request.headers.get("Accept"))


def request_accepts(media_type: str) -> bool:
    """Whether the request's ``Accept`` allows an answer of ``media_type``."""
    return request_prefers([media_type]) is not None


def _utf8(media_type: str) -> str:
    """What meao sends of a text type: ``text/plain`` is ``text/plain; charset=utf-8`` (so is JSON)."""
    parsed = parse_media_type(media_type)
    textual = parsed.type == "text" or parsed.subtype == "json" or parsed.subtype.endswith("+json")
    return f"{media_type}; charset=utf-8" if textual and "charset" not in parsed.params else media_type


class AcceptGuardOperation:
    """One operation: 406 when the request's ``Accept`` allows none of the media types it answers with."""

    def __init__(self, next_app: ASGIApp, offers: list[str]) -> None:
        self.next_app = next_app
        self.offers = offers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.offers:
            header = Headers(scope=scope).get("accept")
            if preferred(self.offers, header) is None:
                raise NotAcceptable(f"this resource answers with {' or '.join(self.offers)}, which the Accept "
                                    f"header ({header}) does not allow; accept one of them")
        await self.next_app(scope, receive, send)


class AcceptGuardAPI(RoutedAPI[AcceptGuardOperation]):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.add_paths()

    def make_operation(self, operation: AbstractOperation) -> AcceptGuardOperation:
        """Checked where the operation documents 406, against the media types of its 2xx answers."""
        offers: list[str] = []
        if "406" in operation.responses:
            for status, response in operation.responses.items():
                if str(status).startswith("2"):
                    offers += [_utf8(t) for t in (response.get("content") or {}) if _utf8(t) not in offers]
        return AcceptGuardOperation(self.next_app, offers)


class AcceptGuardMiddleware(RoutedMiddleware[AcceptGuardAPI]):
    """406 for an unacceptable ``Accept`` on every operation that documents it (MEC 010-2: "the server
    cannot provide any of the content formats supported by the client"). Add with
    ``position=MiddlewarePosition.BEFORE_VALIDATION``: after security, before the body is read."""

    api_cls = AcceptGuardAPI
