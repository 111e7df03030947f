"""The package management API, Mm1 ``/app_pkgm/v1`` (MEC 010-2 clause 7.3).

The camelCase of the ETSI request types (CreateAppPkg, AppPkgInfoModifications) is written here;
answers come back as the API sends them (AppPkgInfo …), because the CLI prints them with their wire names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from meao.oss.client.errors import OperationFailed
from meao.oss.client.package_file import CHUNK
from meao.oss.client.subscriptions import SubscriptionsProxy
from meao.oss.client.waiting import OnPoll, wait_for

ONBOARDING = "onboarding of package"


def onboarding_ended(info: dict[str, Any]) -> bool:
    """ONBOARDED, or back in CREATED with onboardingFailureDetails (a failed fetch or processing)."""
    return info.get("onboardingState") == "ONBOARDED" or bool(info.get("onboardingFailureDetails"))


class PkgmProxy(SubscriptionsProxy):
    """Application packages in the order of their life (create, upload, follow, read, delete); subscriptions."""

    root: ClassVar[str] = "/app_pkgm/v1"
    api: ClassVar[str] = "pkgm"

    def create_package(self, name: str, version: str, path: str, checksum: str, algorithm: str = "SHA-256",
                       provider: str | None = None,
                       user_defined_data: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST /app_packages with a CreateAppPkg (clause 6.2.3.2); the MEAO then fetches ``path``."""
        body: dict[str, Any] = {"appPkgName": name, "appPkgVersion": version, "appPkgPath": path,
                                "checksum": {"algorithm": algorithm, "hash": checksum}}
        if provider:
            body["appProvider"] = provider
        if user_defined_data:
            body["userDefinedData"] = user_defined_data
        return self._json("POST", "/app_packages", json=body)

    def upload_package(self, pkg_id: str, path: Path,
                       progress_cb: Callable[[int, int], None] | None = None) -> None:
        """PUT /app_packages/{id}/package_content, streaming ``path``; ``progress_cb(sent, total)``."""
        total = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            sent = 0
            with path.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    sent += len(chunk)
                    yield chunk
                    if progress_cb is not None:
                        progress_cb(sent, total)

        # with Content-Length given, httpx streams the iterator without chunked transfer encoding
        self._request("PUT", f"/app_packages/{pkg_id}/package_content", content=chunks(),
                      headers={"Content-Type": "application/zip", "Content-Length": str(total)})

    def follow_package(self, pkg_id: str, until: Callable[[dict[str, Any]], bool], *, timeout: float | None,
                       on_poll: OnPoll | None = None) -> dict[str, Any]:
        """Read the AppPkgInfo until ``until(info)``; ``WaitTimeout`` after ``timeout`` seconds."""
        return wait_for(lambda: self.get_package(pkg_id), until, kind=ONBOARDING, timeout=timeout,
                        on_poll=on_poll)

    def wait_package(self, pkg_id: str, *, timeout: float | None,
                     on_poll: OnPoll | None = None) -> dict[str, Any]:
        """Follow onboarding until ONBOARDED; ``OperationFailed`` once onboardingFailureDetails appears."""
        info = self.follow_package(pkg_id, onboarding_ended, timeout=timeout, on_poll=on_poll)
        if info.get("onboardingFailureDetails"):
            raise OperationFailed(ONBOARDING, info, info["onboardingFailureDetails"])
        return info

    def get_package(self, pkg_id: str) -> dict[str, Any]:
        """GET /app_packages/{id}: the AppPkgInfo."""
        return self._json("GET", f"/app_packages/{pkg_id}")

    def list_packages(self, filter_: str | None = None) -> list[dict[str, Any]]:
        """GET /app_packages (clause 7.3.1.3.2), optionally with a MEC 009 filter expression."""
        return self._list("/app_packages", filter_)

    def set_package_state(self, pkg_id: str, state: str) -> dict[str, Any]:
        """PATCH /app_packages/{id} with AppPkgInfoModifications: ``ENABLED`` or ``DISABLED``."""
        return self._json("PATCH", f"/app_packages/{pkg_id}", json={"operationalState": state})

    def delete_package(self, pkg_id: str) -> None:
        """DELETE /app_packages/{id} (the package must be DISABLED and NOT_IN_USE once onboarded)."""
        self._request("DELETE", f"/app_packages/{pkg_id}")

    def filter_body(self, subscription_type: str, filter_: dict[str, Any] | list[Any]) -> dict[str, Any]:
        """AppPkgFilter is a list in every package subscription type (clause 6.2.3.9.2)."""
        return {"appPkgFilter": filter_ if isinstance(filter_, list) else [filter_]}
