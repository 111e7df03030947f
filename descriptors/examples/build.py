"""Build the example MEC application packages (SOL004 CSAR zips, MEC 037 clause 6).

Usage: ``python descriptors/examples/build.py --out DIR [names...]`` (all examples when no name is
given). Each package is built from its source folder next to this file, plus generated content:

- a tiny valid qcow2 disk image (header, refcount table and block, empty L1 table; no data clusters)
  written at build time, so no binary is committed; its SHA-256 and size replace the ``@IMAGE_SHA256@``
  and ``@IMAGE_SIZE@`` placeholders in the descriptors;
- for ``vnf-sol001-plain``, the SOL001 v2.6.1 type files copied from ``../shared/specs/sol001-v2.6.1``
  (relative to the repository root) with their forge URL import of the common types rewritten to the
  bare file name, as the Tacker samples ship them;
- the manifest (MEC 037 clause 6.2.2): the metadata block of table 6.2.2-1, then a Source / Algorithm
  (SHA-256) / Hash block for every other file of the package.

Builds are reproducible: fixed release date, fixed zip timestamps, sorted entries.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import struct
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent
REPO_ROOT = EXAMPLES_DIR.parents[1]
SOL001_V261_DIR = REPO_ROOT.parent / "shared" / "specs" / "sol001-v2.6.1"
SOL001_COMMON_URL = "https://forge.etsi.org/rep/nfv/SOL001/raw/v2.6.1/etsi_nfv_sol001_common_types.yaml"
RELEASE_DATE_TIME = "2024-05-02T09:30:00+00:00"
ZIP_DATE_TIME = (2024, 5, 2, 9, 30, 0)


class BuildError(Exception):
    """A package could not be built; the message says which and why."""


@dataclass(frozen=True)
class PackageSpec:
    """What build.py adds to an example's source folder."""

    manifest: str
    metadata: dict[str, str]
    image: str  # path of the generated qcow2 image inside the package
    image_virtual_size: int = 1024 ** 3
    with_sol001_v261: bool = False
    templated: tuple[str, ...] = field(default=())  # files with @IMAGE_SHA256@ / @IMAGE_SIZE@


def _mec_metadata(vnfd_id: str, product: str, software_version: str, package_version: str,
                  app_info_name: str, app_description: str) -> dict[str, str]:
    return {
        "vnfd_id": vnfd_id, "vnf_provider_id": "meao-examples", "vnf_product_name": product,
        "vnf_release_date_time": RELEASE_DATE_TIME, "vnf_software_version": software_version,
        "vnf_package_version": package_version, "compatible_specification_versions": "2.6.1, 4.3.1",
        "mec_versions": "3.2.1", "vnfm_info": "etsivnfm:v2.3.1", "app_info_name": app_info_name,
        "app_description": app_description,
    }


PACKAGES: dict[str, PackageSpec] = {
    "mec-vm-app": PackageSpec(
        manifest="mec-vm-app.mf",
        metadata=_mec_metadata("6f1c3f4e-2a77-4f0e-9a51-0c2d7e5b8a10", "mec-vm-app", "1.0.0", "1.0",
                               "MEC VM example application",
                               "Single-VM MEC application with traffic and DNS rules"),
        image="Files/images/mec-vm-app.qcow2", templated=("Definitions/mec_vm_app.yaml",)),
    "mec-minimal": PackageSpec(
        manifest="mec-minimal.mf",
        metadata=_mec_metadata("0b5e4a3c-1d2f-4e6a-8b7c-9d0e1f2a3b4c", "mec-minimal", "1.0", "1.0",
                               "MEC minimal example", "Smallest valid MEC 037 AppD"),
        image="Files/images/mec-minimal.qcow2", templated=("Definitions/mec_minimal.yaml",)),
    "mec-json-appd": PackageSpec(
        manifest="mec-json-appd.mf",
        metadata=_mec_metadata("3d9a7f20-64c1-4b8e-a0f5-2e7c9b1d4a66", "mec-json-app", "2.1.0", "1.0",
                               "MEC JSON example application",
                               "MEC application described by a MEC 010-2 AppD document"),
        image="Files/images/mec-json-app.qcow2", templated=("Definitions/appd.json",)),
    "vnf-sol001-plain": PackageSpec(
        manifest="vnf-sol001-plain.mf",
        metadata={"vnf_provider_id": "meao-examples", "vnf_product_name": "plain-vnf",
                  "vnf_release_date_time": RELEASE_DATE_TIME, "vnf_package_version": "1.0"},
        image="Files/images/plain-vnf.qcow2", with_sol001_v261=True,
        templated=("Definitions/vnf_plain_top.yaml",)),
}


def qcow2_image(virtual_size: int = 1024 ** 3, cluster_bits: int = 16) -> bytes:
    """A valid, empty qcow2 (version 3) image: every guest block reads as zeros.

    Layout, one cluster each: header, refcount table, refcount block, L1 table. The refcount block
    counts those four clusters; all L1 entries are zero (no L2 tables, no data clusters).
    """
    cluster = 1 << cluster_bits
    l2_entries = cluster // 8
    l1_size = -(-virtual_size // (cluster * l2_entries))
    if l1_size * 8 > cluster:
        raise BuildError("qcow2 virtual size too large for a one-cluster L1 table")
    header = struct.pack(
        ">4sIQIIQIIQQIIQQQQII",
        b"QFI\xfb", 3,  # magic, version
        0, 0,  # backing file offset, size
        cluster_bits, virtual_size, 0,  # cluster bits, virtual size, no encryption
        l1_size, 3 * cluster,  # L1 entries, L1 table offset
        cluster, 1,  # refcount table offset, clusters
        0, 0,  # snapshots
        0, 0, 0,  # incompatible, compatible, autoclear features
        4, 104,  # refcount order (16-bit refcounts), header length
    )
    header += struct.pack(">II", 0, 0)  # end of header extensions
    refcount_table = struct.pack(">Q", 2 * cluster)
    refcount_block = struct.pack(">4H", 1, 1, 1, 1)
    return b"".join(part.ljust(cluster, b"\0") for part in (header, refcount_table, refcount_block, b""))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(tree: Path) -> list[str]:
    return sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file())


def write_manifest(tree: Path, spec: PackageSpec) -> Path:
    """Write the manifest: metadata block (MEC 037 table 6.2.2-1), then a digest block per file."""
    manifest = tree / spec.manifest
    lines = ["metadata:"] + [f"{name}: {value}" for name, value in spec.metadata.items()] + [""]
    for name in _files(tree):
        if name == spec.manifest:
            continue
        lines += [f"Source: {name}", "Algorithm: SHA-256", f"Hash: {_sha256(tree / name)}", ""]
    manifest.write_text("\n".join(lines), encoding="utf-8")
    return manifest


def _copy_sol001_v261(tree: Path) -> None:
    if not SOL001_V261_DIR.is_dir():
        raise BuildError(f"vnf-sol001-plain needs the SOL001 v2.6.1 type files in {SOL001_V261_DIR} "
                         "(../shared/specs/sol001-v2.6.1 relative to the repository root); not found")
    for source in sorted(SOL001_V261_DIR.glob("etsi_nfv_sol001_*_types.yaml")):
        text = source.read_text(encoding="utf-8").replace(SOL001_COMMON_URL, "etsi_nfv_sol001_common_types.yaml")
        (tree / "Definitions" / source.name).write_text(text, encoding="utf-8")


def _zip(tree: Path, target: Path) -> None:
    tmp = target.with_suffix(target.suffix + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in _files(tree):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with (tree / name).open("rb") as src, archive.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)  # streamed: large test packages stay memory-flat
    tmp.replace(target)


def build_package(name: str, out_dir: Path, *, mutate: Callable[[Path], None] | None = None,
                  tamper: Callable[[Path], None] | None = None, appd_id: str | None = None,
                  image_variant: int = 0) -> Path:
    """Build example ``name`` into ``out_dir/<name>.zip`` and return the zip's path.

    ``mutate(tree)`` runs on the staged package folder before the manifest is written (digests match
    the change); ``tamper(tree)`` runs after it (digests are stale), for tests of integrity checks.
    ``appd_id`` gives the package another appDId (manifest and AppD alike), so a test can onboard the
    example more than once; ``image_variant`` > 0 makes its image's bytes (and checksum) differ.
    """
    spec = PACKAGES.get(name)
    if spec is not None and (appd_id or image_variant):
        spec = replace(spec, metadata={**spec.metadata, "vnfd_id": appd_id or spec.metadata["vnfd_id"]},
                       image_virtual_size=spec.image_virtual_size + image_variant * 65536)
    source = EXAMPLES_DIR / name
    if spec is None or not source.is_dir():
        raise BuildError(f"unknown example package '{name}'; known: {', '.join(sorted(PACKAGES))}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=out_dir) as staging:
        tree = Path(staging) / name
        shutil.copytree(source, tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        image = tree / spec.image
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(qcow2_image(spec.image_virtual_size))
        values = {"@IMAGE_SHA256@": _sha256(image), "@IMAGE_SIZE@": str(image.stat().st_size)}
        for templated in spec.templated:
            path = tree / templated
            text = path.read_text(encoding="utf-8")
            for placeholder, value in values.items():
                text = text.replace(placeholder, value)
            path.write_text(text, encoding="utf-8")
        if appd_id:
            for path in (tree / "Definitions").rglob("*.yaml"):
                path.write_text(path.read_text(encoding="utf-8").replace(PACKAGES[name].metadata["vnfd_id"], appd_id),
                                encoding="utf-8")
        if spec.with_sol001_v261:
            _copy_sol001_v261(tree)
        if mutate is not None:
            mutate(tree)
        write_manifest(tree, spec)
        if tamper is not None:
            tamper(tree)
        target = out_dir / f"{name}.zip"
        _zip(tree, target)
    return target


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description="Build the meao example MEC application packages (CSAR zips).")
    parser.add_argument("--out", required=True, type=Path, help="output folder for the <name>.zip files")
    parser.add_argument("names", nargs="*", help=f"packages to build (default: all of {', '.join(PACKAGES)})")
    args = parser.parse_args(argv)
    try:
        for name in args.names or list(PACKAGES):
            path = build_package(name, args.out)
            print(f"built {name}: {path} ({path.stat().st_size} bytes)")
    except (BuildError, OSError) as exc:
        print(f"build.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
