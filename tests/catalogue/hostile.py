"""A hostile-package corpus: builders of CSARs that must be refused, each with the reason expected.

Every case is generated (nothing binary is committed), so the corpus is readable and reproducible.
"""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from collections.abc import Callable

META = ("TOSCA-Meta-File-Version: 1.0\nCSAR-Version: 1.1\nCreated-By: meao tests\n"
        "Entry-Definitions: Definitions/app.yaml\nETSI-Entry-Manifest: app.mf\n")
METADATA = {"vnfd_id": "hostile-app", "vnf_provider_id": "meao-tests", "vnf_product_name": "hostile",
            "vnf_release_date_time": "2026-01-01T00:00:00+00:00", "vnf_software_version": "1.0",
            "vnf_package_version": "1.0", "compatible_specification_versions": "2.6.1",
            "mec_versions": "3.2.1", "vnfm_info": "etsivnfm:v2.3.1"}
APPD = b"tosca_definitions_version: tosca_simple_yaml_1_3\ndescription: hostile test\n"


def manifest(files: dict[str, bytes], extra: str = "") -> bytes:
    """A SOL004 manifest with correct SHA-256 digests for ``files``."""
    lines = ["metadata:"] + [f"{k}: {v}" for k, v in METADATA.items()] + [""]
    for name, data in files.items():
        lines += [f"Source: {name}", "Algorithm: SHA-256", f"Hash: {hashlib.sha256(data).hexdigest()}", ""]
    return ("\n".join(lines) + extra).encode()


def csar(files: dict[str, bytes], *, mf: bytes | None = None,
         tweak: Callable[[zipfile.ZipFile], None] | None = None) -> bytes:
    """Zip bytes of a CSAR holding TOSCA.meta, ``files`` and a manifest (correct unless ``mf`` given)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("TOSCA-Metadata/TOSCA.meta", META)
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("app.mf", mf if mf is not None else manifest(files))
        if tweak:
            tweak(zf)
    return buf.getvalue()


def _member(zf: zipfile.ZipFile, name: str, data: bytes, mode: int | None = None) -> None:
    info = zipfile.ZipInfo(name)
    if mode is not None:
        info.external_attr = mode << 16
    zf.writestr(info, data)


def zip_bomb() -> bytes:
    return csar({"Definitions/app.yaml": APPD},
                tweak=lambda zf: zf.writestr("Files/bomb.bin", b"\0" * (32 * 1024 * 1024)))


def path_traversal() -> bytes:
    return csar({"Definitions/app.yaml": APPD}, tweak=lambda zf: _member(zf, "../../evil.txt", b"x"))


def absolute_path() -> bytes:
    return csar({"Definitions/app.yaml": APPD}, tweak=lambda zf: _member(zf, "/tmp/meao-evil.txt", b"x"))


def symlink() -> bytes:
    return csar({"Definitions/app.yaml": APPD},
                tweak=lambda zf: _member(zf, "Files/passwd", b"/etc/passwd", stat.S_IFLNK | 0o777))


def yaml_alias_bomb() -> bytes:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = ("tosca_definitions_version: tosca_simple_yaml_1_3\n" + "\n".join(lines) + "\n").encode()
    return csar({"Definitions/app.yaml": bomb})


def deep_nesting() -> bytes:
    deep = b"tosca_definitions_version: tosca_simple_yaml_1_3\nx: " + b"[" * 500 + b"]" * 500 + b"\n"
    return csar({"Definitions/app.yaml": deep})


def truncated(valid: bytes) -> bytes:
    return valid[: len(valid) // 2]


def not_a_zip() -> bytes:
    return b"this is not a zip archive at all\n" * 10


def oversized_manifest() -> bytes:
    files = {"Definitions/app.yaml": APPD}
    return csar(files, mf=manifest(files, extra="# padding\n" * 200_000))


def digest_mismatch() -> bytes:
    files = {"Definitions/app.yaml": APPD, "Files/readme.txt": b"original"}
    mf = manifest(files)
    return csar({**files, "Files/readme.txt": b"tampered"}, mf=mf)


def missing_file() -> bytes:
    files = {"Definitions/app.yaml": APPD}
    return csar(files, mf=manifest({**files, "Files/gone.txt": b"x"}))


def non_utf8_name() -> bytes:
    data = csar({"Definitions/app.yaml": APPD}, tweak=lambda zf: _member(zf, "Files/QQQQ.txt", b"x"))
    return data.replace(b"Files/QQQQ.txt", b"Files/\xe9\xe9\xe9\xe9.txt")


# case → (builder taking the bytes of a valid package, words the refusal must contain)
CASES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "zip_bomb": (lambda _v: zip_bomb(), "zip bomb"),
    "path_traversal": (lambda _v: path_traversal(), "escapes the package"),
    "absolute_path": (lambda _v: absolute_path(), "absolute path"),
    "symlink": (lambda _v: symlink(), "symbolic link"),
    "yaml_alias_bomb": (lambda _v: yaml_alias_bomb(), "alias"),
    "deep_nesting": (lambda _v: deep_nesting(), "nest"),
    "truncated": (truncated, "not a ZIP archive"),
    "not_a_zip": (lambda _v: not_a_zip(), "not a ZIP archive"),
    "oversized_manifest": (lambda _v: oversized_manifest(), "limit"),
    "digest_mismatch": (lambda _v: digest_mismatch(), "digest mismatch for file 'Files/readme.txt'"),
    "missing_file": (lambda _v: missing_file(), "'Files/gone.txt' is listed in the manifest but missing"),
    "non_utf8_name": (lambda _v: non_utf8_name(), "not UTF-8"),
}
