"""Getting a local package zip onboarded: the MEAO reads it as a file:// URI when it can, else the CLI uploads it.

An upload is only sent to a CREATED package; a fetch the MEAO still runs is waited for, not raced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from meao.oss.cli.errors import EXIT_CONFLICT, CommandFailed
from meao.oss.cli.progress import StatusLine, package_poll, upload_progress, wait_timeout
from meao.oss.client import ClientProblem, MeaoClient, OperationFailed, file_digest, onboarding_ended

# RFC 2606 reserves .invalid: the MEAO's fetch of this placeholder fails at once, and our upload
# (which moves the package to a new onboarding attempt) supersedes that fetch anyway.
UPLOAD_PLACEHOLDER = "http://uploaded-by-meao-cli.invalid/"


def _wait_settled(made: MeaoClient, pkg_id: str, line: StatusLine) -> dict[str, Any]:
    """Let a running fetch or processing of the package end (CREATED or ONBOARDED)."""
    return made.pkgm.follow_package(pkg_id, lambda i: i.get("onboardingState") in ("CREATED", "ONBOARDED"),
                                    timeout=wait_timeout(), on_poll=package_poll(line))


def upload(made: MeaoClient, pkg_id: str, file: Path, line: StatusLine) -> None:
    """PUT the content once the package is CREATED; a fetch still running is waited for, not raced."""
    for _ in range(3):
        info = _wait_settled(made, pkg_id, line)
        if info.get("onboardingState") == "ONBOARDED":
            raise CommandFailed(f"application package {pkg_id} is already ONBOARDED; there is nothing to upload",
                                f"create a new package for {file.name}", EXIT_CONFLICT)
        try:
            made.pkgm.upload_package(pkg_id, file, upload_progress(line, file.name))
            return
        except ClientProblem as exc:
            if exc.status != 409:  # 409: a fetch started between our read and our PUT; wait for it again
                raise
        finally:
            line.close()
    raise CommandFailed(f"application package {pkg_id} kept changing state; the upload did not start",
                        f"`meao package show {pkg_id}`, then retry the upload")


def check_digest(info: dict[str, Any], file: Path) -> None:
    """Refuse to upload ``file`` when its digest is not the checksum the package was created with."""
    checksum = info.get("checksum") or {}
    algorithm, expected = checksum.get("algorithm", "SHA-256"), str(checksum.get("hash", "")).lower()
    try:
        actual = file_digest(file, algorithm)
    except ValueError:  # an algorithm hashlib does not know: the MEAO checks it
        return
    if expected and actual != expected:
        raise CommandFailed(f"{file} has {algorithm} {actual}, but application package {info.get('id')} was "
                            f"created with checksum {expected}",
                            "upload the right file, or create a new package with this file's checksum")


def finish_package(made: MeaoClient, pkg_id: str, wait: bool, line: StatusLine) -> dict[str, Any]:
    """The AppPkgInfo now, or with ``wait`` once onboarded (``OperationFailed`` if onboarding fails)."""
    if wait:
        return made.pkgm.wait_package(pkg_id, timeout=wait_timeout(), on_poll=package_poll(line))
    return made.pkgm.get_package(pkg_id)


def _fetch_failed(info: dict[str, Any], uri: str) -> bool:
    """True when onboarding failed while reading ``uri`` (the MEAO names appPkgPath in those details)."""
    failure = info.get("onboardingFailureDetails") or {}
    return info.get("onboardingState") == "CREATED" and uri in str(failure.get("detail", ""))


def create_from_file(made: MeaoClient, file: Path, name: str, version: str, algorithm: str,
                     provider: str | None, properties: dict[str, str] | None, wait: bool,
                     line: StatusLine) -> dict[str, Any]:
    """POST with a file:// appPkgPath; upload the file instead when the MEAO refuses or cannot read it."""
    checksum = file_digest(file, algorithm)
    uri = file.resolve().as_uri()
    try:
        created = made.pkgm.create_package(name, version, uri, checksum, algorithm, provider, properties)
    except ClientProblem as exc:
        if exc.status != 400:
            raise
        click.echo(f"meao: the MEAO does not read {uri} ({exc.detail}); uploading the file instead", err=True)
        created = made.pkgm.create_package(name, version, UPLOAD_PLACEHOLDER + file.name, checksum, algorithm,
                                           provider, properties)
        upload(made, created["id"], file, line)
        return finish_package(made, created["id"], wait, line)
    # follow the fetch: past it (PROCESSING) the MEAO has the file; a failed read means "upload it"
    info = made.pkgm.follow_package(created["id"],
                                    lambda i: onboarding_ended(i) or i.get("onboardingState") == "PROCESSING",
                                    timeout=wait_timeout(), on_poll=package_poll(line))
    if _fetch_failed(info, uri):
        detail = info["onboardingFailureDetails"].get("detail")
        click.echo(f"meao: the MEAO could not read {uri} ({detail}); uploading the file instead", err=True)
        upload(made, created["id"], file, line)
    elif info.get("onboardingFailureDetails"):
        raise OperationFailed("onboarding of package", info, info["onboardingFailureDetails"])
    return finish_package(made, created["id"], wait, line)
