"""Application package types (MEC 010-2 clause 6.2.3): AppPkgInfo and its parts, AppPkgFilter, AppPkgInfoModifications."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from meao.db.models import AppPackage
from meao.wire.fields import Field, render
from meao.wire.links import app_package_href, link
from meao.wire.times import iso

if TYPE_CHECKING:
    from meao.catalogue.appd import SwImage

# AppPkgInfo (clause 6.2.3.3); optional attributes are left out when unknown
APP_PKG_INFO = (
    Field("id", "id"),
    Field("appDId", "appd_id"),
    Field("appProvider", lambda p: p.app_provider or p.requested_provider),
    Field("appName", "app_name"),
    Field("appSoftwareVersion", "app_software_version"),
    Field("appDVersion", "appd_version"),
    Field("checksum", lambda p: {"algorithm": p.checksum_algorithm, "hash": p.checksum_hash}),
    Field("signingCertificate", "signing_certificate"),
    Field("softwareImages", lambda p: p.software_images or None),
    Field("additionalArtifacts", lambda p: p.additional_artifacts or None),
    Field("onboardingState", "onboarding_state"),
    Field("operationalState", "operational_state"),
    Field("usageState", "usage_state"),
    Field("mecInfo", lambda p: p.mec_info or None),
    Field("userDefinedData", "user_defined_data"),
    Field("onboardingFailureDetails", "onboarding_failure"),
)

# AppPkgFilter (table 6.2.3.10.2-1): the package attributes a subscription may filter on
APP_PKG_FILTER = (
    Field("appPkgInfoId", "id"),
    Field("appDId", "appd_id"),
    Field("appProvider", "app_provider"),
    Field("appName", "app_name"),
    Field("appSoftwareVersion", "app_software_version"),
    Field("appDVersion", "appd_version"),
    Field("operationalState", "operational_state"),
    Field("usageState", "usage_state"),
)


def app_pkg_info(pkg: AppPackage, base: str) -> dict[str, Any]:
    """AppPkgInfo (clause 6.2.3.3) with its self, appD and appPkgContent links."""
    self_href = app_package_href(base, pkg.id)
    return render(APP_PKG_INFO, pkg, _links={"self": link(self_href), "appD": link(f"{self_href}/appd"),
                                             "appPkgContent": link(f"{self_href}/package_content")})


def app_pkg_filter_attributes(pkg: AppPackage) -> dict[str, Any]:
    """The package's values of the AppPkgFilter attributes (None ones included: a filter may name them)."""
    return {f.wire: f.read(pkg) for f in APP_PKG_FILTER}


def app_pkg_info_modifications(operational_state: str) -> dict[str, Any]:
    """AppPkgInfoModifications (clause 6.2.3.8), the answer to a PATCH."""
    return {"operationalState": operational_state}


def sw_image_info(img: SwImage, created_at: datetime) -> dict[str, Any]:
    """AppPkgSWImageInfo of one AppD software image (AppPkgInfo ``softwareImages``, table 6.2.3.3.2-1).

    ``imagePath`` is set for an image shipped in the package, ``provider`` when the AppD names one.
    """
    info: dict[str, Any] = {
        "id": img.id, "name": img.name, "version": img.version,
        "checksum": {"algorithm": img.checksum.algorithm, "hash": img.checksum.hash},
        "containerFormat": img.container_format.upper(), "diskFormat": img.disk_format.upper(),
        "createdAt": iso(created_at), "minDisk": img.min_disk_gb, "minRam": img.min_ram_mb, "size": img.size_bytes,
    }
    if img.provider:
        info["provider"] = img.provider
    if img.file:
        info["imagePath"] = img.file
    return info


def artifact_info(path: str, algorithm: str, digest: str, non_mano_set: str | None) -> dict[str, Any]:
    """AppPkgArtifactInfo of one other file of the package (AppPkgInfo ``additionalArtifacts``)."""
    info: dict[str, Any] = {"artifactPath": path, "checksum": {"algorithm": algorithm, "hash": digest}}
    if non_mano_set:
        info["nonManoArtifactSetId"] = non_mano_set
    return info
