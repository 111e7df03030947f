"""Streaming digests for package integrity (SOL004 manifest digests, CreateAppPkg checksum)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

from meao.problems import BadRequest

CHUNK = 1024 * 1024

# Accepted spellings of the SOL004 / MEC 009 algorithm names, normalised to hashlib names.
_ALGORITHMS = {
    "SHA-224": "sha224", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512",
    "SHA224": "sha224", "SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512",
}


def hashlib_name(algorithm: str) -> str | None:
    """The hashlib name for an ETSI algorithm name (case-insensitive), or None if unsupported."""
    return _ALGORITHMS.get(algorithm.strip().upper().replace("_", "-")) or _ALGORITHMS.get(
        algorithm.strip().upper().replace("-", ""))


def new_hasher(algorithm: str) -> hashlib._Hash:
    """A hasher for ``algorithm``; BadRequest naming the supported ones otherwise."""
    name = hashlib_name(algorithm)
    if name is None:
        raise BadRequest(f"checksum algorithm {algorithm!r} is not supported; use one of "
                         "SHA-224, SHA-256, SHA-384, SHA-512")
    return hashlib.new(name)


def check_checksum(algorithm: str, value: str) -> None:
    """A CreateAppPkg checksum (MEC 010-2 clause 6.2.5.6) must be the hex digest ``algorithm`` makes.

    A hash of another length or with non-hex characters can never match the package; refusing it now
    (400) beats an onboarding that fails later with a digest mismatch.
    """
    length = new_hasher(algorithm).digest_size * 2
    if len(value) != length or value.strip("0123456789abcdefABCDEF"):
        raise BadRequest(f"checksum hash must be the {length} hexadecimal digits of a {algorithm} digest; "
                         f"got {len(value)} characters")


def digest_stream(stream: BinaryIO, algorithm: str) -> str:
    """Hex digest of a stream, read in 1 MiB chunks so memory stays flat."""
    hasher = new_hasher(algorithm)
    while chunk := stream.read(CHUNK):
        hasher.update(chunk)
    return hasher.hexdigest()


def digest_file(path: Path, algorithm: str) -> str:
    """Hex digest of a file, streamed."""
    with path.open("rb") as fh:
        return digest_stream(fh, algorithm)


def same_digest(a: str, b: str) -> bool:
    """Compare two hex digests, ignoring case and surrounding blanks."""
    return a.strip().lower() == b.strip().lower()
