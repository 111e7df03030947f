"""Fetching a package from ``appPkgPath`` (CreateAppPkg, MEC 010-2 clause 6.2.3.2), streamed and hashed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

import httpx

from meao.catalogue.integrity import CHUNK, new_hasher
from meao.config import Settings
from meao.outbound import OutboundGate, OutboundPolicy, OutboundRefused, Resolver
from meao.problems import BadRequest, OnboardingError, UploadInterrupted

log = logging.getLogger(__name__)
MAX_REDIRECTS = 5  # each hop is checked by the outbound policy like the first request


def check_source_uri(uri: str, settings: Settings) -> None:
    """Refuse, at creation time, URIs meao will never fetch (BadRequest with the reason)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        if not parsed.netloc:
            raise BadRequest(f"appPkgPath {uri!r} has no host")
        OutboundPolicy.for_packages(settings).refuse_literal(uri, "appPkgPath")
        return
    if parsed.scheme == "file":
        if settings.pkg_file_root is None:
            raise BadRequest("file: URIs are not accepted: the operator has not configured "
                             "MEAO_PKG_FILE_ROOT; use an http(s) URI or upload with PUT package_content")
        _local_path(uri, settings)
        return
    raise BadRequest(f"appPkgPath {uri!r}: only http, https and file URIs are supported")


def _local_path(uri: str, settings: Settings) -> Path:
    parsed = urlparse(uri)
    if parsed.netloc not in ("", "localhost"):
        raise BadRequest(f"appPkgPath {uri!r}: file URIs must name a local path (file:///...)")
    path = Path(unquote(parsed.path)).resolve()
    root = settings.pkg_file_root
    assert root is not None
    if root != path and root not in path.parents:
        raise BadRequest(f"appPkgPath {uri!r} is outside MEAO_PKG_FILE_ROOT ({root}); copy the package "
                         "there or upload it with PUT package_content")
    return path


def fetch_to(uri: str, dest: Path, algorithm: str, settings: Settings,
             on_chunk: Callable[[], None] | None = None, resolver: Resolver | None = None) -> tuple[str, int]:
    """Copy the package at ``uri`` to ``dest``; return (hex digest, size). Streams, memory stays flat.

    ``on_chunk`` runs after every chunk (the onboarding job stops there once its claim is lost). The whole
    fetch must end within ``MEAO_FETCH_DEADLINE_S``: a source that sends a byte now and then would
    otherwise keep a worker, and the package, busy for ever. http(s) connections, redirect hops included,
    go only where the outbound policy allows (``meao.outbound``; ``resolver`` stubs DNS in tests).
    """
    hasher = new_hasher(algorithm)
    size = 0
    limit = settings.max_package_bytes
    deadline_s = settings.fetch_deadline_s
    deadline = time.monotonic() + deadline_s
    read_timeout_s = min(settings.fetch_timeout_s, deadline_s)
    gate = OutboundGate(OutboundPolicy.for_packages(settings), resolver)

    def _account(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)
        if size > limit:
            raise OnboardingError(f"the package at {uri} is larger than the {limit}-byte limit "
                                  "(MEAO_MAX_PACKAGE_BYTES)")
        if time.monotonic() > deadline:  # how much arrived is told only of a public server
            arrived = "" if gate.reached_internal else f"; {size} bytes had arrived"
            raise OnboardingError(f"fetching appPkgPath {uri} did not finish within {deadline_s:g} s "
                                  f"(MEAO_FETCH_DEADLINE_S{arrived}): publish the package "
                                  "on a faster server or upload it with PUT package_content, or ask the "
                                  "operator to raise MEAO_FETCH_DEADLINE_S")
        hasher.update(chunk)
        if on_chunk is not None:
            on_chunk()

    try:
        with open(dest, "wb") as out:
            for chunk in _read_source(uri, settings, read_timeout_s, gate):
                _account(chunk)
                out.write(chunk)
    except OutboundRefused as exc:
        dest.unlink(missing_ok=True)
        raise OnboardingError(_refusal_detail(gate, uri, exc)) from exc
    except httpx.TimeoutException as exc:
        dest.unlink(missing_ok=True)
        raise _remote_failure(gate, uri, f"fetching appPkgPath {uri} timed out: no data for {read_timeout_s:g} s; "
                              "check that the server publishing the package is up and reachable from meao") from exc
    except httpx.HTTPError as exc:
        dest.unlink(missing_ok=True)
        raise _remote_failure(gate, uri, f"fetching appPkgPath {uri} failed: {exc}") from exc
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return hasher.hexdigest(), size


def _remote_failure(gate: OutboundGate, uri: str, detail: str) -> OnboardingError:
    """The failure of a fetch that reached a server: as it happened for a public server; for one on a
    network only the operator's allowance opens, the caller learns neither its answer nor the error
    (meao would be a port scanner and a content oracle of those networks); the operator's log has them."""
    if not gate.reached_internal:
        return OnboardingError(detail)
    log.warning("fetch from a server the outbound allowance opens failed: %s", detail)
    return OnboardingError(f"fetching appPkgPath {uri} failed. Its server is on a network that only the "
                           f"operator's outbound allowance ({gate.policy.settings_hint}) opens to meao, so meao "
                           "does not tell what it answered: the operator finds the reason in meao's log, or "
                           "upload the package with PUT package_content")


def _refusal_detail(gate: OutboundGate, uri: str, exc: OutboundRefused) -> str:
    """What the outbound policy refused: the appPkgPath's own host, or a redirect hop (named only when no
    server on an allowed internal network sent it: its Location is that server's answer)."""
    if exc.host == httpx.URL(uri).raw_host.decode("ascii"):  # as httpcore names it: lower case, IDNA
        return f"appPkgPath {uri} was not fetched: {exc}"
    if not gate.reached_internal:
        return f"appPkgPath {uri} was not fetched: it redirects, and {exc}"
    return (f"appPkgPath {uri} was not fetched: it redirects to a non-public address, which meao reaches only "
            f"where the operator allows it in {gate.policy.settings_hint} (CIDRs or host names)")


def _read_source(uri: str, settings: Settings, read_timeout_s: float, gate: OutboundGate) -> Iterator[bytes]:
    """The bytes at ``uri`` as they arrive (no read waits longer than ``read_timeout_s``)."""
    if urlparse(uri).scheme == "file":
        try:
            src = _local_path(uri, settings).open("rb")
        except BadRequest as exc:
            raise OnboardingError(exc.detail) from exc
        except OSError as exc:
            raise OnboardingError(f"cannot read appPkgPath {uri}: {exc.strerror}") from exc
        with src:
            while chunk := src.read(CHUNK):
                yield chunk
        return
    with gate.client(timeout=httpx.Timeout(read_timeout_s), follow_redirects=True,
                     max_redirects=MAX_REDIRECTS) as http, http.stream("GET", uri) as resp:
        if resp.status_code != 200:
            raise _remote_failure(gate, uri, f"fetching appPkgPath {uri} answered HTTP {resp.status_code}; "
                                  "check the URI and that the package is published there")
        yield from resp.iter_bytes()  # as received: the deadline is checked after every read


def copy_stream_to(stream: BinaryIO, dest: Path, algorithm: str, limit: int, *, expected_size: int | None = None,
                   on_chunk: Callable[[], None] | None = None) -> tuple[str, int]:
    """Copy an uploaded body to ``dest``; return (hex digest, size).

    Raises OnboardingError above ``limit``, and UploadInterrupted when the body ends before the
    ``expected_size`` its Content-Length announced (the client went away). ``on_chunk`` runs after every
    chunk (the upload's heartbeat).
    """
    hasher = new_hasher(algorithm)
    size = 0
    try:
        with open(dest, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise OnboardingError(f"the uploaded package is larger than the {limit}-byte limit "
                                          "(MEAO_MAX_PACKAGE_BYTES)", status=413, title="Payload Too Large")
                hasher.update(chunk)
                out.write(chunk)
                if on_chunk is not None:
                    on_chunk()
        if expected_size is not None and size < expected_size:
            raise UploadInterrupted(f"the upload ended after {size} of the {expected_size} bytes announced; "
                                    "upload the package again")
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return hasher.hexdigest(), size
