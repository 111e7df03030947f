"""Which form an AppD is in, and the reader for it: the one entry point, :func:`load_appd`."""

from __future__ import annotations

from pathlib import Path

from meao.catalogue.appd.document import load_mec010_2
from meao.catalogue.appd.files import guard_yaml, load_json, load_yaml, path_inside
from meao.catalogue.appd.model import AppD, AppDError
from meao.catalogue.appd.tosca import load_tosca


def load_appd(package_root: Path, entry: str) -> AppD:
    """Load and validate the AppD at ``entry`` (path relative to the extracted package root).

    A ``.json`` entry, or a YAML document without ``tosca_definitions_version``, is a MEC 010-2 AppD
    document (clause 6.2.1); anything else is a MEC 037 TOSCA AppD. Raises :class:`AppDError` naming
    the file, node and rule at fault.
    """
    root = package_root.resolve()
    entry_path = path_inside(root, root, entry, what="Entry-Definitions", source=entry)
    if not entry_path.is_file():
        raise AppDError(f"{entry}: entry definitions file not found in the package")
    if entry_path.suffix.lower() == ".json":
        return load_mec010_2(root, entry, load_json(entry_path, entry))
    guard_yaml(entry_path, entry)
    document = load_yaml(entry_path, entry)
    if isinstance(document, dict) and "tosca_definitions_version" not in document:
        return load_mec010_2(root, entry, document)
    return load_tosca(root, entry, entry_path)
