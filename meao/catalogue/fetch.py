"""Fetching a package from ``appPkgPath`` (CreateAppPkg, MEC 010-2 clause 6.2.3.2), streamed and hashed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

import httpx

from meao.catalogue.integrity import CHUNK, new_hasher
from meao.config import Settings
from meao.problems import BadRequest, OnboardingError, UploadInterrupted
from meao.redaction import mask_url


def check_source_uri(uri: str, settings: Settings) -> None:
    """Refuse, at creation time, URIs meao will never fetch (BadRequest with the reason)."""
    parsed = urlparse(uri)
    shown = mask_url(uri)  # a password in the URI stays out of the message
    if parsed.scheme in ("http", "https"):
        if not parsed.netloc:
            raise BadRequest(f"appPkgPath {shown!r} has no host")
        return
    if parsed.scheme == "file":
        if settings.pkg_file_root is None:
            raise BadRequest("file: URIs are not accepted: the operator has not configured "
                             "MEAO_PKG_FILE_ROOT; use an http(s) URI or upload with PUT package_content")
        _local_path(uri, settings)
        return
    raise BadRequest(f"appPkgPath {shown!r}: only http, https and file URIs are supported")


def _local_path(uri: str, settings: Settings) -> Path:
    parsed = urlparse(uri)
    shown = mask_url(uri)
    if parsed.netloc not in ("", "localhost"):
        raise BadRequest(f"appPkgPath {shown!r}: file URIs must name a local path (file:///...)")
    path = Path(unquote(parsed.path)).resolve()
    root = settings.pkg_file_root
    assert root is not None
    if root != path and root not in path.parents:
        raise BadRequest(f"appPkgPath {shown!r} is outside MEAO_PKG_FILE_ROOT ({root}); copy the package "
                         "there or upload it with PUT package_content")
    return path


def fetch_to(uri: str, dest: Path, algorithm: str, settings: Settings,
             on_chunk: Callable[[], None] | None = None) -> tuple[str, int]:
    """Copy the package at ``uri`` to ``dest``; return (hex digest, size). Streams, memory stays flat.

    ``on_chunk`` runs after every chunk (the onboarding job stops there once its claim is lost). The whole
    fetch must end within ``MEAO_FETCH_DEADLINE_S``: a source that sends a byte now and then would
    otherwise keep a worker, and the package, busy for ever.
    """
    hasher = new_hasher(algorithm)
    size = 0
    shown = mask_url(uri)  # a password in the URI stays out of the messages
    limit = settings.max_package_bytes
    deadline_s = settings.fetch_deadline_s
    deadline = time.monotonic() + deadline_s

    def _account(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)
        if size > limit:
            raise OnboardingError(f"the package at {shown} is larger than the {limit}-byte limit "
                                  "(MEAO_MAX_PACKAGE_BYTES)")
        if time.monotonic() > deadline:
            raise OnboardingError(f"fetching appPkgPath {shown} did not finish within {deadline_s:g} s "
                                  f"(MEAO_FETCH_DEADLINE_S; {size} bytes had arrived): publish the package "
                                  "on a faster server or upload it with PUT package_content, or ask the "
                                  "operator to raise MEAO_FETCH_DEADLINE_S")
        hasher.update(chunk)
        if on_chunk is not None:
            on_chunk()

    try:
        with open(dest, "wb") as out:
            for chunk in _read_source(uri, settings, min(settings.fetch_timeout_s, deadline_s)):
                _account(chunk)
                out.write(chunk)
    except httpx.TimeoutException as exc:
        dest.unlink(missing_ok=True)
        raise OnboardingError(f"fetching appPkgPath {shown} timed out: no data for "
                              f"{min(settings.fetch_timeout_s, deadline_s):g} s; check that the server "
                              "publishing the package is up and reachable from meao") from exc
    except httpx.HTTPError as exc:
        dest.unlink(missing_ok=True)
        raise OnboardingError(f"fetching appPkgPath {shown} failed: {exc}") from exc
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return hasher.hexdigest(), size


def _read_source(uri: str, settings: Settings, read_timeout_s: float) -> Iterator[bytes]:
    """The bytes at ``uri`` as they arrive (no read waits longer than ``read_timeout_s``)."""
    shown = mask_url(uri)
    if urlparse(uri).scheme == "file":
        try:
            src = _local_path(uri, settings).open("rb")
        except BadRequest as exc:
            raise OnboardingError(exc.detail) from exc
        except OSError as exc:
            raise OnboardingError(f"cannot read appPkgPath {shown}: {exc.strerror}") from exc
        with src:
            while chunk := src.read(CHUNK):
                yield chunk
        return
    with httpx.stream("GET", uri, timeout=httpx.Timeout(read_timeout_s), follow_redirects=True) as resp:
        if resp.status_code != 200:
            raise OnboardingError(f"fetching appPkgPath {shown} answered HTTP {resp.status_code}; "
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
