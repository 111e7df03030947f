"""Flows of the MEPM-V run step by step against the fake VIM and a real database, without a worker.

Each FlowContext gets its own JobRecords, so concurrent "workers" share nothing but the database and
the PoP (the one FakeVim), as separate processes at one PoP share them.
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any

from meao.catalogue.appd import AppD
from meao.catalogue.appd.load import load_appd
from meao.db.models import AppInstance, AppLcmOpOcc, AppPackage
from meao.db.session import session_scope
from meao.lcm import lifecycle
from meao.nfvo.fake import FakeVim
from meao.nfvo.vim import ImageSpec, OpenStream, Vim
from mecpm import flows
from mecpm.meao_link import JobRecords
from mecpm.mep import MepDriver

VM_APP_ENTRY = "Definitions/mec_vm_app.yaml"


class RecordingMep(MepDriver):
    """The flows' MEP collaborator in unit tests: records what the MEPM-V asked (the real MEP's tests
    are in tests/mep)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def issue_credentials(self, instance_id: str) -> dict[str, Any]:
        self.calls.append(("credentials", instance_id))
        return {"appInstanceId": instance_id, "clientId": f"mp1-{instance_id}", "clientSecret": "s",
                "tokenEndpoint": "http://mep/mep/oauth2/token", "mecAppSupportUri": "http://mep/mec_app_support/v1",
                "mecServiceMgmtUri": "http://mep/mec_service_mgmt/v1"}

    def register(self, instance_id: str, registration: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("register", instance_id))
        return {"appInstanceId": instance_id, "realised": {}}

    def deregister(self, instance_id: str) -> None:
        self.calls.append(("deregister", instance_id))

    def graceful_termination(self, instance_id: str, action: str, timeout_s: int, keep_alive: Any) -> dict[str, Any]:
        self.calls.append((action, instance_id))
        return {"state": "NOT_SUBSCRIBED", "operationAction": action, "maxGracefulTimeout": timeout_s}

    def clear_termination(self, instance_id: str) -> None:
        self.calls.append(("clear", instance_id))


def vm_app(tmp: Path) -> tuple[AppD, Path]:
    """The mec-vm-app example's AppD and its extracted content (image file included)."""
    from descriptors.examples.build import build_package

    root = tmp / "content"
    with zipfile.ZipFile(build_package("mec-vm-app", tmp)) as archive:
        archive.extractall(root)
    return load_appd(root, VM_APP_ENTRY), root


def add_package(appd: AppD) -> str:
    """An app package row (never onboarded) whose id images and instances can refer to."""
    with session_scope() as session:
        pkg = AppPackage(app_pkg_name="p", app_pkg_version="1", checksum_algorithm="SHA-256",
                         checksum_hash="0" * 64, appd_id=appd.appd_id, appd_model=appd.to_dict())
        session.add(pkg)
    return pkg.id


def add_instance(package_id: str, appd: AppD, **values: Any) -> str:
    """An app instance row of the package."""
    with session_scope() as session:
        inst = AppInstance(app_pkg_id=package_id, appd_id=appd.appd_id, app_provider=appd.app_provider,
                           app_name=appd.app_name, app_soft_version=appd.app_soft_version,
                           appd_version=appd.appd_version, **values)
        session.add(inst)
    return inst.id


def instance_resources(instance_id: str) -> dict[str, Any]:
    with session_scope() as session:
        return dict(session.get(AppInstance, instance_id).resources or {})


def claimed_lease(instance_id: str) -> lifecycle.Lease:
    """A worker's lease on a new INSTANTIATE occurrence of the instance (what fences the flow's writes)."""
    with session_scope() as session:
        op = AppLcmOpOcc(app_instance_id=instance_id, lcm_operation="INSTANTIATE", queue="mecpm.test")
        session.add(op)
    lease = lifecycle.claim(op.id, 1, "test-worker")
    assert lease is not None
    return lease


def context(vim: Vim, appd: AppD, content: Path, package_id: str, instance_id: str,
            resources: dict[str, Any] | None = None, fresh: bool = True) -> flows.FlowContext:
    """What the runner would hand the steps of one operation of ``instance_id`` on ``vim``'s cloud."""
    subject = flows.OpSubject(id=f"op-{instance_id}", instance_id=instance_id, package_id=package_id,
                              appd_id=appd.appd_id, appd=appd, content_dir=content, params={})
    pop = flows.PopSite(vim=vim, mep=RecordingMep(), availability_zone=None, networks={"default": "net1"},
                        boot_timeout_s=5)
    cloud = getattr(vim, "cloud_name", "fake")
    lease = claimed_lease(instance_id)
    return flows.FlowContext(op=subject, pop=pop, meao=JobRecords(instance_id, package_id, cloud, "http://meao", lease),
                             resources=dict(resources or {}, cloud=cloud), fresh=fresh)


class SlowStream(io.BytesIO):
    """An image file that takes ``delay`` per read, so concurrent uploads overlap as big ones do."""

    def __init__(self, data: bytes, delay: float) -> None:
        super().__init__(data)
        self.delay = delay

    def read(self, size: int | None = -1) -> bytes:
        time.sleep(self.delay)
        return super().read(size)


class SlowUploadVim(FakeVim):
    """A fake PoP whose image data streams in slowly: uploads take long enough to overlap."""

    def __init__(self, delay: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay = delay
        self.uploads = 0  # how many times image data was opened (an upload began)

    def ensure_image(self, image: ImageSpec, open_stream: OpenStream, package_id: str) -> str:
        def slow() -> SlowStream:
            self.uploads += 1
            with open_stream() as stream:
                return SlowStream(stream.read(), self.delay)

        return super().ensure_image(image, slow, package_id)
