"""Package authenticity through Mm1 (SOL004 security options, MEC 037 clause 6.2): live API and worker."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.api.helpers import create_from_file, onboard, onboard_on_own_serve, remove, wait_outcome
from tests.conftest import Stack


def _sign(tmp: Path, pki: Path, name: str = "mec-minimal", **kw) -> Path:
    from descriptors.examples.sign import sign_package

    return sign_package(name, tmp, ca_dir=pki, **kw)[0]


def _refusal(stack: Stack, package: Path) -> str:
    resp = create_from_file(stack, package)
    info = wait_outcome(stack, resp.json()["id"])
    assert info["onboardingState"] == "CREATED", "a badly signed package must not onboard"
    remove(stack, info["id"])
    return info["onboardingFailureDetails"]["detail"]


@pytest.mark.parametrize("option", [1, 2])
def test_signed_package_onboards_and_reports_its_signing_certificate(
        stack: Stack, tmp_path: Path, pki_dir: Path, option: int) -> None:
    info = onboard(stack, _sign(tmp_path, pki_dir, option=option))
    try:
        assert info["signingCertificate"].startswith("-----BEGIN CERTIFICATE-----")
    finally:
        remove(stack, info["id"])


def test_tampered_manifest_is_refused(stack: Stack, tmp_path: Path, pki_dir: Path) -> None:
    pkg = _sign(tmp_path, pki_dir)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(pkg) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith(".mf"):
                data = data.replace(b"vnf_package_version: ", b"vnf_package_version: 9", 1)
            dst.writestr(item, data)
    assert "signature" in _refusal(stack, tampered).lower()


def test_package_signed_by_an_untrusted_ca_is_refused(stack: Stack, tmp_path: Path) -> None:
    detail = _refusal(stack, _sign(tmp_path, tmp_path / "other-pki"))
    assert "trust" in detail.lower() or "CA" in detail


def test_package_signed_with_an_expired_certificate_is_refused(stack: Stack, tmp_path: Path, pki_dir: Path) -> None:
    assert "expired" in _refusal(stack, _sign(tmp_path, pki_dir, expired=True)).lower()


def test_option2_envelope_with_tampered_csar_is_refused(stack: Stack, tmp_path: Path, pki_dir: Path) -> None:
    env = _sign(tmp_path, pki_dir, option=2)
    bad = tmp_path / "bad-envelope.zip"
    with zipfile.ZipFile(env) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith((".csar", ".zip")):
                data = data[:-10] + b"0123456789"
            dst.writestr(item, data)
    assert "signature" in _refusal(stack, bad).lower()


def test_operator_requiring_signatures_refuses_unsigned_packages(tmp_path: Path, pki_dir: Path) -> None:
    from descriptors.examples.build import build_package

    root = tmp_path / "pkgs"
    unsigned = build_package("mec-minimal", root)
    signed = _sign(root / "signed", pki_dir)
    outcomes = onboard_on_own_serve(tmp_path, {
        "MEAO_REQUIRE_SIGNED_PACKAGES": "true", "MEAO_TRUSTED_CA_FILE": str(pki_dir / "ca.pem"),
        "MEAO_PKG_FILE_ROOT": str(root)}, {"unsigned": unsigned, "signed": signed})
    assert "not signed" in outcomes["unsigned"]["onboardingFailureDetails"]["detail"]
    assert outcomes["signed"]["onboardingState"] == "ONBOARDED"
