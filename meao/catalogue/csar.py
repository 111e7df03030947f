"""SOL004 CSAR handling: safe extraction, TOSCA.meta and manifest (MEC 037 clause 6, SOL004 clause 4).

Everything here treats the archive as hostile: member names, sizes, compression ratios, symlinks and
the manifest size are checked before a byte is written, and nothing is ever written outside ``dest``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from meao.catalogue.integrity import CHUNK, digest_file, hashlib_name, same_digest
from meao.problems import OnboardingError

TOSCA_META = "TOSCA-Metadata/TOSCA.meta"
MAX_META_BYTES = 64 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits that stop zip bombs and resource exhaustion."""

    max_unpacked_bytes: int
    max_compression_ratio: int
    max_members: int
    max_manifest_bytes: int


def _check_member_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if "\x00" in name:
        raise OnboardingError(f"archive member {name!r} has a NUL byte in its name; package refused")
    if not info.flag_bits & 0x800 and any(ord(c) > 127 for c in name):
        raise OnboardingError(f"archive member {name!r}: name is not UTF-8 encoded (zip flag 11 unset); "
                              "rebuild the package with UTF-8 file names")
    if "\\" in name:
        raise OnboardingError(f"archive member {name!r} uses backslashes; CSAR paths use '/'")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise OnboardingError(f"archive member {name!r} has an absolute path; package refused")
    parts = PurePosixPath(name).parts
    if any(p == ".." for p in parts):
        raise OnboardingError(f"archive member {name!r} escapes the package with '..'; package refused")
    ftype = stat.S_IFMT(info.external_attr >> 16)  # only the file-type bits; many zips carry none
    if ftype == stat.S_IFLNK:
        raise OnboardingError(f"archive member {name!r} is a symbolic link; links are not allowed in a CSAR")
    if ftype and ftype not in (stat.S_IFREG, stat.S_IFDIR):
        raise OnboardingError(f"archive member {name!r} is not a regular file or directory")
    if info.flag_bits & 0x1:
        raise OnboardingError(f"archive member {name!r} is encrypted; encrypted CSARs are not supported")
    return name


def extract_archive(zip_path: Path, dest: Path, limits: ArchiveLimits) -> dict[str, str]:
    """Extract a CSAR zip into ``dest`` (which must not exist); return each file's SHA-256 hex digest.

    Digests are computed while extracting, so manifest checks need not read the files again.

    Raises OnboardingError with the reason for truncated or non-zip files, traversal, absolute paths,
    symlinks, too many members, total size or compression ratio above the limits.
    """
    if not zipfile.is_zipfile(zip_path):
        raise OnboardingError("the package is not a ZIP archive (or it is truncated): a CSAR must be a "
                              "complete ZIP file (SOL004 clause 4.1)")
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise OnboardingError(f"the package cannot be read as a ZIP archive: {exc}") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise OnboardingError(f"the archive has {len(infos)} members, more than the limit of "
                                  f"{limits.max_members}")
        seen: set[str] = set()
        files: list[zipfile.ZipInfo] = []
        total = 0
        total_compressed = 0
        for info in infos:
            name = _check_member_name(info)
            key = name.rstrip("/")
            if key in seen:
                raise OnboardingError(f"archive member {name!r} appears twice; package refused")
            seen.add(key)
            if info.is_dir():
                continue
            total += info.file_size
            total_compressed += info.compress_size
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > 1024 * 1024 and ratio > limits.max_compression_ratio:
                raise OnboardingError(
                    f"archive member {name!r} expands {ratio:.0f}x (limit {limits.max_compression_ratio}x): "
                    "refused as a zip bomb")
            files.append(info)
        if total > limits.max_unpacked_bytes:
            raise OnboardingError(f"the archive expands to {total} bytes, above the limit of "
                                  f"{limits.max_unpacked_bytes} bytes (MEAO_MAX_UNPACKED_BYTES)")
        if total > 1024 * 1024 and total / max(total_compressed, 1) > limits.max_compression_ratio:
            raise OnboardingError("the archive as a whole expands more than "
                                  f"{limits.max_compression_ratio}x: refused as a zip bomb")
        dest.mkdir(parents=True)
        root = dest.resolve()
        written = 0
        digests: dict[str, str] = {}
        try:
            for info in files:
                target = (root / info.filename).resolve()
                if root not in target.parents:
                    raise OnboardingError(f"archive member {info.filename!r} resolves outside the package")
                target.parent.mkdir(parents=True, exist_ok=True)
                hasher = hashlib.sha256()
                with zf.open(info) as src, open(target, "xb") as out:
                    while chunk := src.read(CHUNK):
                        written += len(chunk)
                        if written > limits.max_unpacked_bytes:
                            raise OnboardingError("the archive expands beyond the unpacked size limit")
                        hasher.update(chunk)
                        out.write(chunk)
                digests[info.filename] = hasher.hexdigest()
        except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, OSError, RuntimeError) as exc:
            shutil.rmtree(dest, ignore_errors=True)
            raise OnboardingError(f"the archive is corrupt or truncated: {exc}") from exc
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        return digests


@dataclass
class CsarLayout:
    """Where the parts of a CSAR are (TOSCA.meta block 0, or the single root YAML of SOL004 4.1)."""

    entry_definitions: str
    manifest: str | None
    certificate: str | None = None
    change_log: str | None = None
    licenses: str | None = None
    meta: dict[str, str] = field(default_factory=dict)


_META_ALIASES = {
    "manifest": ("ETSI-Entry-Manifest", "Entry-Manifest"),
    "certificate": ("ETSI-Entry-Certificate", "Entry-Certificate"),
    "change_log": ("ETSI-Entry-Change-Log", "Entry-Change-Log"),
    "licenses": ("ETSI-Entry-Licenses", "Entry-Licenses"),
}


def _parse_meta(text: str) -> dict[str, str]:
    meta: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            break  # block 0 ends at the first blank line
        if ":" not in line:
            raise OnboardingError(f"{TOSCA_META} line {lineno}: expected 'Key: value', got {line!r}")
        key, value = line.split(":", 1)
        meta[key.strip()] = value.strip()
    return meta


def read_layout(root: Path, members: Iterable[str]) -> CsarLayout:
    """Find entry definitions, manifest, certificate from TOSCA.meta (ETSI- or legacy keys)."""
    members = list(members)
    names = set(members)
    meta_path = root / TOSCA_META
    if TOSCA_META in names:
        if meta_path.stat().st_size > MAX_META_BYTES:
            raise OnboardingError(f"{TOSCA_META} is larger than {MAX_META_BYTES} bytes")
        try:
            meta = _parse_meta(meta_path.read_text("utf-8"))
        except UnicodeDecodeError as exc:
            raise OnboardingError(f"{TOSCA_META} is not UTF-8 text") from exc
        for required in ("TOSCA-Meta-File-Version", "CSAR-Version", "Created-By", "Entry-Definitions"):
            if required not in meta:
                raise OnboardingError(f"{TOSCA_META} lacks the '{required}' key (SOL004 clause 4.1)")
        layout = CsarLayout(entry_definitions=meta["Entry-Definitions"], manifest=None, meta=meta)
        for attr, keys in _META_ALIASES.items():
            for key in keys:
                if key in meta:
                    setattr(layout, attr, meta[key])
                    break
    else:
        roots = [m for m in members if "/" not in m and m.lower().endswith((".yaml", ".yml"))]
        if len(roots) != 1:
            raise OnboardingError(
                "the package has no TOSCA-Metadata/TOSCA.meta and not exactly one YAML file at its root "
                f"(found {len(roots)}); see SOL004 clause 4.1")
        layout = CsarLayout(entry_definitions=roots[0], manifest=None)
    if layout.manifest is None:
        # SOL004: without a manifest key, the manifest has the entry definitions' base name and .mf
        candidate = str(PurePosixPath(layout.entry_definitions).with_suffix(".mf").name)
        if candidate in names:
            layout.manifest = candidate
    for attr in ("entry_definitions", "manifest", "certificate", "change_log"):
        value = getattr(layout, attr)
        if value is not None and value not in names:
            raise OnboardingError(f"{TOSCA_META} names {attr.replace('_', ' ')} file {value!r}, "
                                  "but the package has no such file")
    return layout


@dataclass
class ManifestEntry:
    """One Source block of the manifest; ``signature``/``certificate`` name the artifact's own signature
    and certificate files when the provider signed it individually (SOL004 clause 5.3)."""

    source: str
    algorithm: str | None
    hash: str | None
    line: int
    signature: str | None = None
    certificate: str | None = None


@dataclass
class Manifest:
    """A parsed SOL004 manifest: metadata, non-MANO artifact sets, digest blocks, CMS signature."""

    path: str
    metadata: dict[str, str]
    entries: list[ManifestEntry]
    non_mano_sets: dict[str, list[str]]
    signature_pem: str | None


def parse_manifest(path: Path, name: str, max_bytes: int) -> Manifest:
    """Parse the manifest at ``path`` (``name`` is its package path, for messages)."""
    size = path.stat().st_size
    if size > max_bytes:
        raise OnboardingError(f"manifest {name} is {size} bytes, above the {max_bytes}-byte limit")
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise OnboardingError(f"manifest {name} is not UTF-8 text") from exc
    signature = None
    m = re.search(r"-----BEGIN CMS-----.*?-----END CMS-----\s*", text, re.DOTALL)
    if m:
        signature = m.group(0).strip()
        text = text[: m.start()] + text[m.end():]
    metadata: dict[str, str] = {}
    entries: list[ManifestEntry] = []
    non_mano: dict[str, list[str]] = {}
    section = None
    current_set: str | None = None
    current: ManifestEntry | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            current, current_set = None, None  # a blank line ends a digest block or an artifact set
            continue
        if line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep:
            raise OnboardingError(f"manifest {name} line {lineno}: expected 'name: value', got {line!r}")
        if key == "metadata" and not value:
            section = "metadata"
            continue
        if key == "non_mano_artifact_sets" and not value:
            section, current_set = "non_mano", None
            continue
        if key == "Source":
            if section == "non_mano" and current_set is not None:
                non_mano[current_set].append(value)
                continue
            section = "files"
            current = ManifestEntry(source=value, algorithm=None, hash=None, line=lineno)
            entries.append(current)
            continue
        if key in ("Algorithm", "Hash", "Signature", "Certificate"):
            if current is None:
                raise OnboardingError(f"manifest {name} line {lineno}: '{key}' without a preceding 'Source'")
            setattr(current, key.lower(), value)
            continue
        if section == "metadata":
            if key in metadata:
                raise OnboardingError(f"manifest {name} line {lineno}: metadata '{key}' given twice")
            metadata[key] = value
        elif section == "non_mano" and not value:
            current_set = key
            non_mano[key] = []
        else:
            raise OnboardingError(f"manifest {name} line {lineno}: unexpected line {line!r}")
    return Manifest(path=name, metadata=metadata, entries=entries, non_mano_sets=non_mano,
                    signature_pem=signature)


def verify_manifest_digests(root: Path, manifest: Manifest, sha256: dict[str, str]) -> None:
    """Check every Source/Algorithm/Hash block against the extracted files.

    ``sha256`` holds the digests computed during extraction; other algorithms stream the file again.
    """
    names = set(sha256)
    for entry in manifest.entries:
        where = f"manifest {manifest.path} line {entry.line}"
        if "://" in entry.source:
            continue  # an external artifact: its digest is checked where it is fetched
        source = entry.source.removeprefix("./")
        if source not in names:
            raise OnboardingError(f"{where}: file {source!r} is listed in the manifest but missing from "
                                  "the package")
        if not entry.algorithm or not entry.hash:
            raise OnboardingError(f"{where}: file {source!r} has no Algorithm/Hash pair")
        if hashlib_name(entry.algorithm) is None:
            raise OnboardingError(f"{where}: file {source!r}: digest algorithm {entry.algorithm!r} is not "
                                  "supported (SHA-224/256/384/512)")
        if hashlib_name(entry.algorithm) == "sha256":
            actual = sha256[source]
        else:
            actual = digest_file(root / source, entry.algorithm)
        if not same_digest(actual, entry.hash):
            raise OnboardingError(f"{where}: digest mismatch for file {source!r}: manifest says "
                                  f"{entry.hash}, the file has {actual} ({entry.algorithm})")


def unlisted_members(layout: CsarLayout, manifest: Manifest, members: Iterable[str]) -> list[str]:
    """The package's files that no Source/Algorithm/Hash block of the manifest covers, sorted.

    ``members`` are the files extracted (directory entries are not members). Exempt, because a digest
    in the manifest cannot cover them or they vouch for themselves: the manifest (its signature covers
    it), the certificate named by ``ETSI-Entry-Certificate`` in TOSCA.meta (MEC 037 clause 6.2.3; it is
    checked against the trusted CA, and TOSCA.meta, which names it, must itself be listed), and the
    ``Signature:`` / ``Certificate:`` files of individually signed artifacts named in the manifest's
    blocks (SOL004 clause 5.3). Everything else, TOSCA.meta, the AppD, licenses and the change log
    included, must be listed: an unlisted file could be swapped without breaking any signature.
    """
    listed = {e.source.removeprefix("./") for e in manifest.entries if "://" not in e.source}
    exempt = {manifest.path, layout.manifest, layout.certificate}
    for entry in manifest.entries:
        exempt.update(f.removeprefix("./") for f in (entry.signature, entry.certificate) if f)
    return sorted(m for m in members if m not in listed and m not in exempt)
