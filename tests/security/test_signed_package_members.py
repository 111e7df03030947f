"""Issue 16 item 3: a signed package must list (and so verify) every member in its manifest.

Only the files the manifest lists are digest-checked, and the signature covers only the manifest. So a
signed package whose manifest leaves out TOSCA.meta or the AppD could be re-pointed at another AppD and
still be recorded as signed. Through the live API and worker (SQLite and PostgreSQL stacks): such packages
are refused with the unlisted files named; a fully listed signed package still onboards; an unsigned
package keeps today's behaviour unless the operator requires signatures.
"""

from __future__ import annotations

import re
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from descriptors.examples.build import build_package
from descriptors.examples.sign import Pki, cms_pem, cms_sign, sign_manifest
from meao.catalogue.csar import CsarLayout, Manifest, ManifestEntry, parse_manifest, unlisted_members
from meao.catalogue.signature import OPTION_1, SignatureError, SignatureResult, policy_check
from tests.api.helpers import create_from_file, onboard, onboard_on_own_serve, remove, wait_outcome
from tests.conftest import Stack

NAME = "mec-minimal"
MANIFEST = "mec-minimal.mf"
META = "TOSCA-Metadata/TOSCA.meta"
APPD = "Definitions/mec_minimal.yaml"
SIGNED = SignatureResult(signed=True, option=OPTION_1, signer_subject="CN=x", certificate_pem="x")


def _drop_from_manifest(tree: Path, *sources: str) -> None:
    """Remove the Source/Algorithm/Hash blocks of ``sources`` from the built (unsigned) manifest."""
    path = tree / MANIFEST
    text = path.read_text("utf-8")
    for source in sources:
        text, n = re.subn(rf"Source: {re.escape(source)}\nAlgorithm: [^\n]*\nHash: [^\n]*\n\n?", "", text)
        assert n == 1, f"{source} not in the manifest"
    path.write_text(text, "utf-8")


def _package(out: Path, pki: Path, *, unlisted: tuple[str, ...] = (), signed: bool = True,
             after: Callable[[Path], None] | None = None, mutate: Callable[[Path], None] | None = None) -> Path:
    """mec-minimal with a fresh appDId, its manifest leaving out ``unlisted``, signed (option 1) unless not
    ``signed``; ``after(tree)`` changes the package once it is signed (what an attacker would do)."""
    cert, key = Pki(pki).signer()

    def tamper(tree: Path) -> None:
        _drop_from_manifest(tree, *unlisted)
        if signed:
            sign_manifest(tree / MANIFEST, cert, key)
        if after is not None:
            after(tree)

    return build_package(NAME, out, appd_id=str(uuid.uuid4()), mutate=mutate, tamper=tamper)


def _refusal(stack: Stack, package: Path) -> str:
    resp = create_from_file(stack, package)
    assert resp.status_code == 201, resp.text
    info = wait_outcome(stack, resp.json()["id"])
    try:
        assert info["onboardingState"] == "CREATED", "a package with unlisted members was onboarded as signed"
        assert "signingCertificate" not in info or not info["signingCertificate"]
        return info["onboardingFailureDetails"]["detail"]
    finally:
        remove(stack, info["id"])


# --- through the live API and worker ------------------------------------------------------------------

def test_signed_package_whose_manifest_omits_tosca_meta_is_refused(stack: Stack, tmp_path: Path,
                                                                    pki_dir: Path) -> None:
    detail = _refusal(stack, _package(tmp_path, pki_dir, unlisted=(META,)))
    assert f"manifest {MANIFEST} does not list 1 file with a digest ({META})" in detail
    assert "signed" in detail and "sign the package again" in detail


def test_signed_package_whose_manifest_omits_the_appd_is_refused(stack: Stack, tmp_path: Path,
                                                                 pki_dir: Path) -> None:
    detail = _refusal(stack, _package(tmp_path, pki_dir, unlisted=(APPD,)))
    assert f"does not list 1 file with a digest ({APPD})" in detail


def test_signed_package_re_pointed_at_another_appd_is_refused(stack: Stack, tmp_path: Path,
                                                              pki_dir: Path) -> None:
    def re_point(tree: Path) -> None:  # after signing: a new AppD, and TOSCA.meta naming it
        evil = tree / "Definitions" / "evil.yaml"
        evil.write_text((tree / APPD).read_text("utf-8").replace("description: mec-minimal", "description: EVIL"))
        meta = tree / META
        meta.write_text(meta.read_text("utf-8").replace(APPD, "Definitions/evil.yaml"))

    detail = _refusal(stack, _package(tmp_path, pki_dir, unlisted=(META,), after=re_point))
    assert f"does not list 2 files with a digest (Definitions/evil.yaml, {META})" in detail


def test_option2_envelope_whose_inner_manifest_omits_tosca_meta_is_refused(stack: Stack, tmp_path: Path,
                                                                          pki_dir: Path) -> None:
    """The CSAR signature covers every byte, but MEC 037 clause 6.2.2 still has the manifest list all
    files, and meao holds both security options to one rule."""
    inner = _package(tmp_path / "inner", pki_dir, unlisted=(META,), signed=False)
    cert, key = Pki(pki_dir).signer()
    envelope = tmp_path / "envelope.zip"
    with zipfile.ZipFile(envelope, "w") as zf:
        zf.writestr(f"{NAME}.csar", inner.read_bytes())
        zf.writestr(f"{NAME}.cms", cms_pem(cms_sign(inner.read_bytes(), cert, key, include_certificate=False)))
        zf.writestr(f"{NAME}.cert", cert.public_bytes(Encoding.PEM))
    detail = _refusal(stack, envelope)
    assert f"the package is signed, but its manifest {MANIFEST} does not list 1 file with a digest ({META})" in detail


def test_signed_package_listing_every_member_still_onboards(stack: Stack, tmp_path: Path, pki_dir: Path) -> None:
    info = onboard(stack, _package(tmp_path, pki_dir))
    try:
        assert info["signingCertificate"].startswith("-----BEGIN CERTIFICATE-----")
    finally:
        remove(stack, info["id"])


def test_etsi_entry_certificate_file_need_not_be_listed(stack: Stack, tmp_path: Path, pki_dir: Path) -> None:
    cert, key = Pki(pki_dir).signer()

    def name_certificate(tree: Path) -> None:  # before the manifest is written: TOSCA.meta is listed
        meta = tree / META
        meta.write_text(meta.read_text("utf-8").rstrip("\n") + "\nETSI-Entry-Certificate: signer.cert\n")

    def certificate_outside_the_manifest(tree: Path) -> None:
        (tree / "signer.cert").write_bytes(cert.public_bytes(Encoding.PEM))
        sign_manifest(tree / MANIFEST, cert, key, include_certificate=False)

    package = build_package(NAME, tmp_path, appd_id=str(uuid.uuid4()), mutate=name_certificate,
                            tamper=certificate_outside_the_manifest)
    info = onboard(stack, package)
    try:
        assert info["signingCertificate"].startswith("-----BEGIN CERTIFICATE-----")
    finally:
        remove(stack, info["id"])


def test_unsigned_package_with_unlisted_members_keeps_todays_behaviour(stack: Stack, tmp_path: Path,
                                                                       pki_dir: Path) -> None:
    """Without MEAO_REQUIRE_SIGNED_PACKAGES, an unsigned package is held only to its listed digests."""
    info = onboard(stack, _package(tmp_path, pki_dir, unlisted=(META,), signed=False))
    try:
        assert not info.get("signingCertificate")
    finally:
        remove(stack, info["id"])


def test_required_signatures_refuse_an_unsigned_package_naming_its_unlisted_members(
        tmp_path: Path, pki_dir: Path) -> None:
    """MEAO_REQUIRE_SIGNED_PACKAGES=true (a `meao serve` of its own, embedded worker): an unsigned
    package was already refused as unsigned; the reason now also names what its manifest leaves out."""
    root = tmp_path / "pkgs"
    unlisted = _package(root / "a", pki_dir, unlisted=(META, APPD), signed=False)
    signed = _package(root / "b", pki_dir)
    outcomes = onboard_on_own_serve(tmp_path, {
        "MEAO_REQUIRE_SIGNED_PACKAGES": "true", "MEAO_TRUSTED_CA_FILE": str(pki_dir / "ca.pem"),
        "MEAO_PKG_FILE_ROOT": str(root)}, {"unlisted": unlisted, "signed": signed})
    detail = outcomes["unlisted"]["onboardingFailureDetails"]["detail"]
    assert "not signed" in detail and "MEAO_REQUIRE_SIGNED_PACKAGES" in detail
    assert f"does not list 2 files with a digest ({APPD}, {META})" in detail
    assert outcomes["signed"]["onboardingState"] == "ONBOARDED"


# --- the rule itself ----------------------------------------------------------------------------------

def _manifest(*entries: ManifestEntry) -> Manifest:
    return Manifest(path=MANIFEST, metadata={}, entries=list(entries), non_mano_sets={}, signature_pem=None)


def _entry(source: str, **kw: str) -> ManifestEntry:
    return ManifestEntry(source=source, algorithm="SHA-256", hash="00", line=1, **kw)


def test_exempt_members_are_the_manifest_the_entry_certificate_and_artifact_signature_files() -> None:
    layout = CsarLayout(entry_definitions=APPD, manifest=MANIFEST, certificate="Files/pkg.cert")
    manifest = _manifest(_entry(f"./{META}"), _entry(APPD), _entry("https://example.com/x.sh"),
                         _entry("Scripts/run.sh", signature="Scripts/run.sh.sig.cms", certificate="Scripts/run.cert"))
    members = [MANIFEST, META, APPD, "Files/pkg.cert", "Scripts/run.sh", "Scripts/run.sh.sig.cms",
               "Scripts/run.cert", "Licenses/LICENSE.txt", "ChangeLog.txt", "other.mf"]
    assert unlisted_members(layout, manifest, members) == ["ChangeLog.txt", "Licenses/LICENSE.txt", "other.mf"]


def test_manifest_blocks_may_name_an_artifact_signature_and_certificate(tmp_path: Path) -> None:
    mf = tmp_path / MANIFEST
    mf.write_text("metadata:\nvnfd_id: x\n\nSource: Scripts/run.sh\nAlgorithm: SHA-256\nHash: 00\n"
                  "Signature: Scripts/run.sh.sig.cms\nCertificate: Scripts/run.cert\n")
    entry = parse_manifest(mf, MANIFEST, 1 << 20).entries[0]
    assert (entry.signature, entry.certificate) == ("Scripts/run.sh.sig.cms", "Scripts/run.cert")


def test_refusal_names_the_first_five_unlisted_members_and_counts_the_rest() -> None:
    with pytest.raises(SignatureError) as err:
        policy_check(SIGNED, require_signed=False, unlisted=[f"f{i}" for i in range(8)], manifest_name=MANIFEST)
    assert err.value.status == 422
    assert f"manifest {MANIFEST} does not list 8 files with a digest (f0, f1, f2, f3, f4 and 3 more)" in err.value.detail


def test_unsigned_package_is_not_held_to_the_rule_unless_signatures_are_required() -> None:
    policy_check(SignatureResult.unsigned(), require_signed=False, unlisted=[META])
    policy_check(SIGNED, require_signed=True, unlisted=[])
