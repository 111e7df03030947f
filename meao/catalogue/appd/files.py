"""The package's files as the AppD readers see them: paths that stay inside, guarded YAML, bounded JSON.

Every YAML file of an AppD goes through :func:`meao.catalogue.yaml_guard.check_yaml_file` before
anything loads it; a JSON file is refused above the same size bound. A reference leaving the package
root is refused whatever form it takes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import yaml

from meao.catalogue.appd.model import AppDError
from meao.catalogue.yaml_guard import DEFAULT_MAX_BYTES, check_yaml_file
from meao.problems import OnboardingError


def relative_name(root: Path, path: Path) -> str:
    """``path`` relative to the package root, in POSIX form (how the AppD names its files)."""
    return path.relative_to(root).as_posix()


def path_inside(root: Path, base: Path, ref: str, *, what: str, source: str) -> Path:
    """Resolve ``ref`` against ``base`` and refuse anything that leaves the package root."""
    if not isinstance(ref, str) or not ref.strip():
        raise AppDError(f"{source}: {what} is empty or not a string")
    if PurePosixPath(ref).is_absolute() or re.match(r"^[A-Za-z]:[\\/]", ref):
        raise AppDError(f"{source}: {what} '{ref}' is an absolute path; use a path inside the package")
    resolved = (base / ref).resolve()
    if resolved != root and root not in resolved.parents:
        raise AppDError(f"{source}: {what} '{ref}' points outside the package")
    return resolved


def guard_yaml(path: Path, name: str) -> None:
    """The YAML guard on one file, its refusal as an :class:`AppDError`."""
    try:
        check_yaml_file(path, display_name=name)
    except AppDError:
        raise
    except OnboardingError as exc:
        raise AppDError(exc.detail) from exc


def load_yaml(path: Path, name: str) -> Any:
    """A YAML file (already through :func:`guard_yaml`), loaded safely."""
    try:
        with path.open("r", encoding="utf-8") as stream:
            return yaml.safe_load(stream)
    except yaml.YAMLError as exc:
        raise AppDError(f"{name}: not valid YAML: {exc}") from exc


def load_json(path: Path, name: str) -> Any:
    """A JSON file no larger than the YAML guard's bound, as UTF-8 text."""
    size = path.stat().st_size
    if size > DEFAULT_MAX_BYTES:
        raise AppDError(f"{name}: JSON file is {size} bytes, larger than the {DEFAULT_MAX_BYTES} bytes allowed")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise AppDError(f"{name}: not valid UTF-8 text (byte offset {exc.start})") from exc
    except RecursionError as exc:
        raise AppDError(f"{name}: JSON nesting too deep") from exc
    except json.JSONDecodeError as exc:
        raise AppDError(f"{name}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc


def is_url(ref: str) -> bool:
    """Whether ``ref`` is a URL (a scheme longer than a drive letter, with a host or ``file:``)."""
    parsed = urlparse(ref)
    return bool(parsed.scheme) and len(parsed.scheme) > 1 and (bool(parsed.netloc) or parsed.scheme == "file")
