"""Fetching a package from ``appPkgPath`` (CreateAppPkg, MEC 010-2 clause 6.2.3.2), streamed and hashed."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from meao.catalogue.integrity import CHUNK, new_hasher
from meao.config import Settings
from meao.problems import BadRequest, OnboardingError


def check_source_uri(uri: str, settings: Settings) -> None:
    """Refuse, at creation time, URIs meao will never fetch (BadRequest with the reason)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        if not parsed.netloc:
            raise BadRequest(f"appPkgPath {uri!r} has no host")
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


def fetch_to(uri: str, dest: Path, algorithm: str, settings: Settings) -> tuple[str, int]:
    """Copy the package at ``uri`` to ``dest``; return (hex digest, size). Streams, memory stays flat."""
    hasher = new_hasher(algorithm)
    size = 0
    limit = settings.max_package_bytes

    def _account(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)
        if size > limit:
            raise OnboardingError(f"the package at {uri} is larger than the {limit}-byte limit "
                                  "(MEAO_MAX_PACKAGE_BYTES)")
        hasher.update(chunk)

    scheme = urlparse(uri).scheme
    try:
        with open(dest, "wb") as out:
            if scheme == "file":
                try:
                    src_path = _local_path(uri, settings)
                    src = src_path.open("rb")
                except BadRequest as exc:
                    raise OnboardingError(exc.detail) from exc
                except OSError as exc:
                    raise OnboardingError(f"cannot read appPkgPath {uri}: {exc.strerror}") from exc
                with src:
                    while chunk := src.read(CHUNK):
                        _account(chunk)
                        out.write(chunk)
            else:
                timeout = httpx.Timeout(settings.fetch_timeout_s)
                with httpx.stream("GET", uri, timeout=timeout, follow_redirects=True) as resp:
                    if resp.status_code != 200:
                        raise OnboardingError(f"fetching appPkgPath {uri} answered HTTP {resp.status_code}; "
                                              "check the URI and that the package is published there")
                    for chunk in resp.iter_bytes(CHUNK):
                        _account(chunk)
                        out.write(chunk)
    except httpx.HTTPError as exc:
        dest.unlink(missing_ok=True)
        raise OnboardingError(f"fetching appPkgPath {uri} failed: {exc}") from exc
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return hasher.hexdigest(), size


def copy_stream_to(stream, dest: Path, algorithm: str, limit: int) -> tuple[str, int]:
    """Copy an uploaded body to ``dest``; return (hex digest, size). Raises OnboardingError above ``limit``."""
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
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return hasher.hexdigest(), size


