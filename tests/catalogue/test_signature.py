"""Package authenticity: SOL004 security options 1 and 2 (MEC 037 clause 6.3), with a throwaway test CA.

Packages are built and signed at test time by ``descriptors/examples/sign.py``; nothing secret is
committed. Verification runs the real ``openssl cms -verify``.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from descriptors.examples.sign import SIGNER_NAME, sign_package
from meao.catalogue.csar import (
    ArchiveLimits,
    extract_archive,
    parse_manifest,
    read_layout,
    verify_manifest_digests,
)
from meao.catalogue.signature import (
    OPTION_1,
    OPTION_2,
    SignatureError,
    SignatureResult,
    policy_check,
    split_signed_manifest,
    unwrap_option2,
    verify_manifest_signature,
)
from meao.problems import OnboardingError, ProblemError
from tests.catalogue import hostile

LIMITS = ArchiveLimits(max_unpacked_bytes=64 * 1024 * 1024, max_compression_ratio=200, max_members=100,
                       max_manifest_bytes=1024 * 1024)
NAME = "mec-minimal"
MANIFEST = "mec-minimal.mf"
APPD_FILE = "Definitions/mec_minimal.yaml"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One test CA folder for the module (sign.py creates it once and reuses it)."""
    return tmp_path_factory.mktemp("pki")


def _rewrite(zip_path: Path, name: str, change: Callable[[bytes], bytes]) -> None:
    """Rewrite one member of a zip in place, leaving the others as they are."""
    with zipfile.ZipFile(zip_path) as src:
        members = [(info, src.read(info)) for info in src.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info, data in members:
            dst.writestr(info, change(data) if info.filename == name else data)
    zip_path.write_bytes(buf.getvalue())


def _verify_option1(package: Path, ca: Path, tmp_path: Path, *,
                    pass_certificate: bool = True) -> tuple[SignatureResult, Path, dict[str, str]]:
    """What onboarding does for option 1: extract, split the manifest, verify the signature."""
    root = tmp_path / "content"
    sha256 = extract_archive(package, root, LIMITS)
    layout = read_layout(root, sha256)
    assert layout.manifest == MANIFEST
    content, signature = split_signed_manifest((root / MANIFEST).read_bytes(), manifest_name=MANIFEST)
    assert signature is not None
    certificate = None
    if pass_certificate and layout.certificate:
        certificate = (root / layout.certificate).read_text("utf-8")
    result = verify_manifest_signature(content, signature, trusted_ca=ca, certificate_pem=certificate,
                                       manifest_name=MANIFEST)
    return result, root, sha256


def _change_first_hash(manifest: bytes) -> bytes:
    head, sep, rest = manifest.partition(b"Hash: ")
    flipped = b"0" if rest[:1] != b"0" else b"1"
    return head + sep + flipped + rest[1:]


# --- option 1: signed manifest ---------------------------------------------------------------------------

def test_option1_signed_manifest_verifies_and_reports_signer_certificate(tmp_path: Path, pki: Path) -> None:
    package, ca = sign_package(NAME, tmp_path / "out", ca_dir=pki)
    result, root, sha256 = _verify_option1(package, ca, tmp_path)
    assert result.signed and result.option == OPTION_1
    assert SIGNER_NAME in (result.signer_subject or "")
    assert (result.certificate_pem or "").startswith("-----BEGIN CERTIFICATE-----")
    verify_manifest_digests(root, parse_manifest(root / MANIFEST, MANIFEST, 1024 * 1024), sha256)


def test_option1_certificate_from_etsi_entry_certificate_file_verifies(tmp_path: Path, pki: Path) -> None:
    package, ca = sign_package(NAME, tmp_path / "out", ca_dir=pki, entry_certificate=True)
    result, root, sha256 = _verify_option1(package, ca, tmp_path)
    assert result.signed and SIGNER_NAME in (result.signer_subject or "")
    assert result.certificate_pem == (root / "mec-minimal.cert").read_text("utf-8")
    verify_manifest_digests(root, parse_manifest(root / MANIFEST, MANIFEST, 1024 * 1024), sha256)


def test_option1_without_certificate_anywhere_names_etsi_entry_certificate(tmp_path: Path, pki: Path) -> None:
    package, ca = sign_package(NAME, tmp_path / "out", ca_dir=pki, entry_certificate=True)
    with pytest.raises(SignatureError, match="neither inside the CMS signature nor in the file named by "
                                             "ETSI-Entry-Certificate"):
        _verify_option1(package, ca, tmp_path, pass_certificate=False)


def test_option1_digest_line_changed_after_signing_fails_signature(tmp_path: Path, pki: Path) -> None:
    package, ca = sign_package(NAME, tmp_path / "out", ca_dir=pki)
    _rewrite(package, MANIFEST, _change_first_hash)
    with pytest.raises(SignatureError) as err:
        _verify_option1(package, ca, tmp_path)
    assert err.value.status == 422
    assert f"manifest {MANIFEST}" in err.value.detail
    assert "does not match" in err.value.detail and "re-sign" in err.value.detail


def test_option1_signature_of_another_manifest_does_not_cover_this_one(tmp_path: Path, pki: Path) -> None:
    minimal, ca = sign_package(NAME, tmp_path / "a", ca_dir=pki)
    other, _ = sign_package("mec-vm-app", tmp_path / "b", ca_dir=pki)
    with zipfile.ZipFile(minimal) as zf:
        content, _ = split_signed_manifest(zf.read(MANIFEST))
    with zipfile.ZipFile(other) as zf:
        _, foreign_signature = split_signed_manifest(zf.read("mec-vm-app.mf"))
    assert foreign_signature is not None
    with pytest.raises(SignatureError, match="does not match the manifest"):
        verify_manifest_signature(content, foreign_signature, trusted_ca=ca, certificate_pem=None,
                                  manifest_name=MANIFEST)


def test_option1_file_changed_with_manifest_intact_passes_signature_but_fails_digests(
        tmp_path: Path, pki: Path) -> None:
    package, ca = sign_package(NAME, tmp_path / "out", ca_dir=pki)
    _rewrite(package, APPD_FILE, lambda data: data + b"\n# tampered\n")
    result, root, sha256 = _verify_option1(package, ca, tmp_path)
    assert result.signed  # the signature covers the manifest only; the digests cover the files
    with pytest.raises(OnboardingError, match=f"digest mismatch for file '{APPD_FILE}'"):
        verify_manifest_digests(root, parse_manifest(root / MANIFEST, MANIFEST, 1024 * 1024), sha256)


def test_option1_certificate_from_untrusted_ca_is_refused(tmp_path: Path, pki: Path) -> None:
    package, _ = sign_package(NAME, tmp_path / "out", ca_dir=pki)
    _, other_ca = sign_package(NAME, tmp_path / "other", ca_dir=tmp_path / "other-pki")
    with pytest.raises(SignatureError) as err:
        _verify_option1(package, other_ca, tmp_path)
    assert "not trusted" in err.value.detail and "MEAO_TRUSTED_CA_FILE" in err.value.detail


def test_option1_expired_certificate_is_refused_naming_it(tmp_path: Path, pki: Path) -> None:
    package, ca = sign_package(NAME, tmp_path / "out", ca_dir=pki, expired=True)
    with pytest.raises(SignatureError) as err:
        _verify_option1(package, ca, tmp_path)
    assert "certificate has expired" in err.value.detail
    assert "expired package signer" in err.value.detail and "valid now" in err.value.detail


def test_unreadable_trusted_ca_bundle_is_a_server_error_not_a_package_fault(tmp_path: Path, pki: Path) -> None:
    package, _ = sign_package(NAME, tmp_path / "out", ca_dir=pki)
    bad = tmp_path / "bundle.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ProblemError) as err:
        _verify_option1(package, bad, tmp_path)
    assert not isinstance(err.value, SignatureError) and err.value.status == 500
    assert "MEAO_TRUSTED_CA_FILE" in err.value.detail


# --- the signed-content byte rule ------------------------------------------------------------------------

def test_split_returns_exactly_the_bytes_before_the_block_and_after_its_trailing_whitespace() -> None:
    body = b"metadata:\r\nvnfd_id: x\r\n\r\nSource: a\r\nAlgorithm: SHA-256\r\nHash: 00\r\n"
    block = b"-----BEGIN CMS-----\nTUlJ\n-----END CMS-----"
    assert split_signed_manifest(body + block + b"\n \n\t") == (body, block.decode())
    assert split_signed_manifest(body + block) == (body, block.decode())
    assert split_signed_manifest(body) == (body, None)


def test_split_agrees_with_parse_manifest_on_what_remains(tmp_path: Path, pki: Path) -> None:
    package, _ = sign_package(NAME, tmp_path / "out", ca_dir=pki)
    with zipfile.ZipFile(package) as zf:
        raw = zf.read(MANIFEST)
    content, signature = split_signed_manifest(raw)
    (tmp_path / "signed.mf").write_bytes(raw)
    (tmp_path / "plain.mf").write_bytes(content)
    signed, plain = (parse_manifest(tmp_path / n, n, 1 << 20) for n in ("signed.mf", "plain.mf"))
    assert signed.signature_pem == signature and plain.signature_pem is None
    assert signed.entries == plain.entries and signed.metadata == plain.metadata


@pytest.mark.parametrize(("raw", "reason"), [
    (b"a: b\n-----BEGIN CMS-----\nx\n-----END CMS-----\n-----BEGIN CMS-----\ny\n-----END CMS-----\n",
     "2 CMS signature blocks"),
    (b"a: b\n-----BEGIN CMS-----\nx\n", "without '-----END CMS-----'"),
])
def test_split_refuses_ambiguous_signature_blocks(raw: bytes, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        split_signed_manifest(raw, manifest_name="app.mf")


def test_signature_block_that_is_not_base64_is_refused_with_reason() -> None:
    with pytest.raises(SignatureError, match="not valid base64"):
        verify_manifest_signature(b"a: b\n", "-----BEGIN CMS-----\n%%%\n-----END CMS-----",
                                  trusted_ca=Path("/nonexistent"), certificate_pem=None, manifest_name="app.mf")


# --- option 2: signed archive ----------------------------------------------------------------------------

def test_option2_envelope_is_verified_and_the_inner_csar_returned(tmp_path: Path, pki: Path) -> None:
    envelope, ca = sign_package(NAME, tmp_path / "out", option=2, ca_dir=pki)
    inner, result = unwrap_option2(envelope, tmp_path / "unwrapped", trusted_ca=ca, max_bytes=1 << 26)
    assert inner == tmp_path / "unwrapped" / f"{NAME}.csar"
    assert result.signed and result.option == OPTION_2 and SIGNER_NAME in (result.signer_subject or "")
    with zipfile.ZipFile(envelope) as zf:
        assert inner.read_bytes() == zf.read(f"{NAME}.csar")
        assert result.certificate_pem == zf.read(f"{NAME}.cert").decode()
    assert "TOSCA-Metadata/TOSCA.meta" in extract_archive(inner, tmp_path / "content", LIMITS)


def test_option2_tampered_inner_csar_is_refused_and_nothing_left(tmp_path: Path, pki: Path) -> None:
    envelope, ca = sign_package(NAME, tmp_path / "out", option=2, ca_dir=pki)
    _rewrite(envelope, f"{NAME}.csar", lambda data: data[:-1] + bytes([data[-1] ^ 1]))
    dest = tmp_path / "unwrapped"
    with pytest.raises(SignatureError) as err:
        unwrap_option2(envelope, dest, trusted_ca=ca, max_bytes=1 << 26)
    assert f"signature {NAME}.cms over {NAME}.csar" in err.value.detail
    assert "does not match the CSAR" in err.value.detail
    assert not any(dest.iterdir())


def test_option2_envelope_signed_by_untrusted_ca_is_refused(tmp_path: Path, pki: Path) -> None:
    envelope, _ = sign_package(NAME, tmp_path / "out", option=2, ca_dir=pki)
    _, other_ca = sign_package(NAME, tmp_path / "other", ca_dir=tmp_path / "other-pki")
    with pytest.raises(SignatureError, match="not trusted"):
        unwrap_option2(envelope, tmp_path / "unwrapped", trusted_ca=other_ca, max_bytes=1 << 26)


def test_option2_envelope_with_an_extra_file_is_refused(tmp_path: Path, pki: Path) -> None:
    envelope, ca = sign_package(NAME, tmp_path / "out", option=2, ca_dir=pki)
    with zipfile.ZipFile(envelope, "a") as zf:
        zf.writestr("notes.txt", b"unsigned extra")
    with pytest.raises(SignatureError, match="must hold exactly"):
        unwrap_option2(envelope, tmp_path / "unwrapped", trusted_ca=ca, max_bytes=1 << 26)


def test_option2_inner_csar_above_size_limit_is_refused_and_nothing_left(tmp_path: Path, pki: Path) -> None:
    envelope, ca = sign_package(NAME, tmp_path / "out", option=2, ca_dir=pki)
    dest = tmp_path / "unwrapped"
    with pytest.raises(SignatureError, match="larger than the 100-byte limit"):
        unwrap_option2(envelope, dest, trusted_ca=ca, max_bytes=100)
    assert not dest.exists() or not any(dest.iterdir())


@pytest.mark.parametrize("kind", ["signed example", "csar with .csar and .cms artifacts inside"])
def test_normal_csar_passed_to_unwrap_option2_is_returned_unchanged(tmp_path: Path, pki: Path,
                                                                     kind: str) -> None:
    if kind == "signed example":
        package = sign_package(NAME, tmp_path / "signed", ca_dir=pki)[0]
    else:  # a CSAR may carry files that look like an envelope's; TOSCA.meta makes it a CSAR
        package = tmp_path / "artifacts.zip"
        package.write_bytes(hostile.csar({"Definitions/app.yaml": hostile.APPD, "x.csar": b"PK", "x.cms": b"0"}))
    before = package.read_bytes()
    dest = tmp_path / "unwrapped"
    returned, result = unwrap_option2(package, dest, trusted_ca=Path("/nonexistent"), max_bytes=1 << 26)
    assert returned == package and result == SignatureResult.unsigned()
    assert package.read_bytes() == before and not dest.exists()


def test_non_zip_upload_passed_to_unwrap_option2_is_returned_unchanged(tmp_path: Path) -> None:
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"not a zip at all")
    assert unwrap_option2(upload, tmp_path / "d", trusted_ca=Path("/nonexistent"), max_bytes=1 << 20) == (
        upload, SignatureResult.unsigned())


# --- operator policy -------------------------------------------------------------------------------------

def test_unsigned_package_is_refused_when_operator_requires_signatures() -> None:
    with pytest.raises(SignatureError, match="package is not signed") as err:
        policy_check(SignatureResult.unsigned(), require_signed=True)
    assert "option 1" in err.value.detail and "option 2" in err.value.detail


def test_unsigned_package_is_accepted_when_signatures_are_optional() -> None:
    policy_check(SignatureResult.unsigned(), require_signed=False)


def test_signed_package_passes_the_policy_that_requires_signatures() -> None:
    policy_check(SignatureResult(signed=True, option=OPTION_1, signer_subject="CN=x", certificate_pem="x"),
                 require_signed=True)
