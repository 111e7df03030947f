"""Unit tests of the CSAR reader: safe extraction, TOSCA.meta, manifest parsing and digests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from meao.catalogue.csar import (
    ArchiveLimits,
    extract_archive,
    parse_manifest,
    read_layout,
    verify_manifest_digests,
)
from meao.problems import OnboardingError
from tests.catalogue import hostile

LIMITS = ArchiveLimits(max_unpacked_bytes=64 * 1024 * 1024, max_compression_ratio=200, max_members=100,
                       max_manifest_bytes=1024 * 1024)
ARCHIVE_CASES = ["zip_bomb", "path_traversal", "absolute_path", "symlink", "truncated", "not_a_zip",
                 "non_utf8_name"]


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "pkg.zip"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", ARCHIVE_CASES)
def test_hostile_archive_is_refused_with_reason_and_nothing_written_outside(tmp_path: Path, case: str) -> None:
    build, reason = hostile.CASES[case]
    src = _write(tmp_path, build(hostile.csar({"Definitions/app.yaml": hostile.APPD})))
    dest = tmp_path / "box" / "content"
    with pytest.raises(OnboardingError) as err:
        extract_archive(src, dest, LIMITS)
    assert reason in err.value.detail
    assert not dest.exists(), "a refused archive must leave no extracted files"
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/meao-evil.txt").exists()


def test_total_unpacked_size_above_limit_is_refused(tmp_path: Path) -> None:
    src = _write(tmp_path, hostile.csar({"Definitions/app.yaml": hostile.APPD, "Files/big.bin": b"x" * 4096}))
    small = ArchiveLimits(2048, 200, 100, 1024)
    with pytest.raises(OnboardingError, match="MEAO_MAX_UNPACKED_BYTES"):
        extract_archive(src, tmp_path / "c", small)


def test_too_many_members_is_refused(tmp_path: Path) -> None:
    files = {f"Files/f{i}.txt": b"x" for i in range(120)}
    src = _write(tmp_path, hostile.csar({"Definitions/app.yaml": hostile.APPD, **files}))
    with pytest.raises(OnboardingError, match="members"):
        extract_archive(src, tmp_path / "c", LIMITS)


def test_extraction_returns_sha256_of_every_file(tmp_path: Path) -> None:
    src = _write(tmp_path, hostile.csar({"Definitions/app.yaml": hostile.APPD}))
    digests = extract_archive(src, tmp_path / "c", LIMITS)
    assert digests["Definitions/app.yaml"] == hashlib.sha256(hostile.APPD).hexdigest()
    assert set(digests) == {"TOSCA-Metadata/TOSCA.meta", "Definitions/app.yaml", "app.mf"}


def test_layout_reads_etsi_and_legacy_keys(tmp_path: Path) -> None:
    (tmp_path / "TOSCA-Metadata").mkdir()
    for key in ("ETSI-Entry-Manifest", "Entry-Manifest"):
        (tmp_path / "TOSCA-Metadata/TOSCA.meta").write_text(
            hostile.META.replace("ETSI-Entry-Manifest", key))
        layout = read_layout(tmp_path, ["TOSCA-Metadata/TOSCA.meta", "Definitions/app.yaml", "app.mf"])
        assert layout.entry_definitions == "Definitions/app.yaml" and layout.manifest == "app.mf"


def test_layout_without_tosca_meta_needs_exactly_one_root_yaml(tmp_path: Path) -> None:
    layout = read_layout(tmp_path, ["app.yaml", "app.mf", "Files/x"])
    assert layout.entry_definitions == "app.yaml" and layout.manifest == "app.mf"
    with pytest.raises(OnboardingError, match="not exactly one YAML file"):
        read_layout(tmp_path, ["a.yaml", "b.yaml"])


def test_layout_naming_a_missing_manifest_is_refused(tmp_path: Path) -> None:
    (tmp_path / "TOSCA-Metadata").mkdir()
    (tmp_path / "TOSCA-Metadata/TOSCA.meta").write_text(hostile.META)
    with pytest.raises(OnboardingError, match="'app.mf'"):
        read_layout(tmp_path, ["TOSCA-Metadata/TOSCA.meta", "Definitions/app.yaml"])


def test_manifest_parses_metadata_sets_digests_and_strips_cms(tmp_path: Path) -> None:
    text = ("metadata:\nvnfd_id: x\nmec_versions: 3.2.1\n\nnon_mano_artifact_sets:\ndocs:\n"
            "Source: Files/doc.txt\n\nSource: Files/doc.txt\nAlgorithm: SHA-256\nHash: ab\n\n"
            "-----BEGIN CMS-----\nMIIB\n-----END CMS-----\n")
    (tmp_path / "m.mf").write_text(text)
    mf = parse_manifest(tmp_path / "m.mf", "m.mf", 4096)
    assert mf.metadata == {"vnfd_id": "x", "mec_versions": "3.2.1"}
    assert mf.non_mano_sets == {"docs": ["Files/doc.txt"]}
    assert [(e.source, e.algorithm, e.hash) for e in mf.entries] == [("Files/doc.txt", "SHA-256", "ab")]
    assert mf.signature_pem and mf.signature_pem.startswith("-----BEGIN CMS-----")


def test_manifest_digest_mismatch_names_the_file(tmp_path: Path) -> None:
    src = _write(tmp_path, hostile.digest_mismatch())
    root = tmp_path / "c"
    digests = extract_archive(src, root, LIMITS)
    mf = parse_manifest(root / "app.mf", "app.mf", 4096)
    with pytest.raises(OnboardingError, match="digest mismatch for file 'Files/readme.txt'"):
        verify_manifest_digests(root, mf, digests)


def test_manifest_with_sha512_digest_is_verified_by_streaming(tmp_path: Path) -> None:
    data = b"payload"
    mf_text = (f"metadata:\nvnfd_id: x\n\nSource: Files/a.bin\nAlgorithm: SHA-512\n"
               f"Hash: {hashlib.sha512(data).hexdigest()}\n")
    (tmp_path / "Files").mkdir()
    (tmp_path / "Files/a.bin").write_bytes(data)
    (tmp_path / "m.mf").write_text(mf_text)
    mf = parse_manifest(tmp_path / "m.mf", "m.mf", 4096)
    verify_manifest_digests(tmp_path, mf, {"Files/a.bin": "unused-for-sha512", "m.mf": ""})
    (tmp_path / "Files/a.bin").write_bytes(b"changed")
    with pytest.raises(OnboardingError, match="digest mismatch"):
        verify_manifest_digests(tmp_path, mf, {"Files/a.bin": "", "m.mf": ""})


def test_oversized_manifest_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.mf").write_text("metadata:\n" + "# pad\n" * 1000)
    with pytest.raises(OnboardingError, match="limit"):
        parse_manifest(tmp_path / "m.mf", "m.mf", 1024)
