"""What the client reads from a local package zip: its digest and its manifest metadata."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

#: bytes read (and uploaded) at a time
CHUNK = 1024 * 1024


def file_digest(path: Path, algorithm: str = "SHA-256") -> str:
    """Hex digest of a file, read in chunks (``SHA-256`` / ``SHA-512`` as named by NFV-SOL 004)."""
    hasher = hashlib.new(algorithm.replace("-", "").lower())
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def read_manifest_metadata(path: Path) -> dict[str, str]:
    """The metadata block (MEC 037 table 6.2.2-1) of the manifest at the root of a package zip; {} if none."""
    try:
        with zipfile.ZipFile(path) as zf:
            manifests = [n for n in zf.namelist() if "/" not in n and n.endswith(".mf")]
            if len(manifests) != 1:
                return {}
            with zf.open(manifests[0]) as fh:
                text = fh.read(64 * 1024).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile):
        return {}
    meta: dict[str, str] = {}
    for line in text.splitlines()[1:] if text.startswith("metadata:") else []:
        if not line.strip():
            break  # the metadata block ends at the first blank line
        key, sep, value = line.partition(":")
        if sep:
            meta[key.strip()] = value.strip()
    return meta
