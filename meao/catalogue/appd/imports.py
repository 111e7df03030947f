"""The imports of a TOSCA AppD: offline type files, the remote import policy and the local import graph.

Nothing is fetched from the network: an import by URL must be one of :data:`REMOTE_IMPORTS` (the
standard MEC 037 and SOL001 type files, mapped to meao's copies in ``descriptors/types``), else the
AppD is refused before tosca-parser runs. Every local import passes the YAML guard before it is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meao.catalogue.appd.files import guard_yaml, is_url, load_yaml, path_inside, relative_name
from meao.catalogue.appd.model import AppDError
from meao.config import tosca_types_dir

TYPES_DIR = tosca_types_dir()
MEC037_TYPES = TYPES_DIR / "etsi_mec_037_types.yaml"
SOL001_VNFD_TYPES = TYPES_DIR / "etsi_nfv_sol001_vnfd_types.yaml"
SOL001_COMMON_TYPES = TYPES_DIR / "etsi_nfv_sol001_common_types.yaml"

_MEC037_VERSIONS = ("v3.1.1", "v3.2.1")
_SOL001_VERSIONS = ("v2.6.1", "v2.7.1", "v2.8.1", "v3.3.1", "v3.5.1", "v3.6.1",
                    "v4.2.1", "v4.3.1", "v4.4.1", "v4.5.1")


def _forge_urls(project: str, version: str, file_name: str) -> list[str]:
    # ETSI forge serves raw files under both the old ("/raw/") and the GitLab ("/-/raw/") route.
    return [f"https://forge.etsi.org/rep/{project}/raw/{version}/{file_name}",
            f"https://forge.etsi.org/rep/{project}/-/raw/{version}/{file_name}"]


def _remote_imports() -> dict[str, Path]:
    mapping: dict[str, Path] = {}
    for version in _MEC037_VERSIONS:
        for url in _forge_urls("mec/gs037-pkg-format", version, "MecAppDTypes.yaml"):
            mapping[url] = MEC037_TYPES
    for version in _SOL001_VERSIONS:
        for url in _forge_urls("nfv/SOL001", version, "etsi_nfv_sol001_vnfd_types.yaml"):
            mapping[url] = SOL001_VNFD_TYPES
        for url in _forge_urls("nfv/SOL001", version, "etsi_nfv_sol001_common_types.yaml"):
            mapping[url] = SOL001_COMMON_TYPES
    return mapping


#: Well-known remote type files (MEC 037 Annex B, SOL001 type files) mapped to meao's local files.
REMOTE_IMPORTS: dict[str, Path] = _remote_imports()


def _import_refs(document: Any, name: str) -> list[str]:
    """The file references of a template's ``imports`` (single-line, multi-line and named forms)."""
    if not isinstance(document, dict):
        raise AppDError(f"{name}: not a TOSCA service template (top level is not a map)")
    imports = document.get("imports") or []
    if not isinstance(imports, list):
        raise AppDError(f"{name}: 'imports' must be a list (TOSCA 1.3 section 3.6.8)")
    refs: list[str] = []
    for item in imports:
        definition: Any = item
        if isinstance(item, dict) and "file" not in item and len(item) == 1:
            definition = next(iter(item.values()))  # older named form: - name: file | {file: ...}
        if isinstance(definition, str):
            refs.append(definition)
        elif isinstance(definition, dict) and isinstance(definition.get("file"), str):
            if definition.get("repository"):
                raise AppDError(f"{name}: import '{definition['file']}' uses repository "
                                f"'{definition['repository']}'; repository imports would need the "
                                "network and are not supported: ship the file in the package")
            refs.append(definition["file"])
        else:
            raise AppDError(f"{name}: import definition {item!r} has no file name")
    return refs


def collect_imports(root: Path, entry: str, entry_path: Path
                    ) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """Walk the local import graph.

    Returns the local files, the URL -> local type file map for tosca-parser, and the loaded local
    documents. Every local file passes the YAML guard before it is loaded; every URL must be in
    REMOTE_IMPORTS.
    """
    local: list[str] = [entry]
    local_defs: dict[str, str] = {}
    documents: dict[str, Any] = {}
    pending = [(entry, entry_path)]
    seen = {entry_path}
    while pending:
        name, path = pending.pop(0)
        document = documents[name] = load_yaml(path, name)
        for ref in _import_refs(document, name):
            if is_url(ref):
                mapped = REMOTE_IMPORTS.get(ref)
                if mapped is None:
                    raise AppDError(
                        f"{name}: import '{ref}' is a remote URL meao does not map to a local type file; "
                        "nothing is fetched from the network at onboarding. Ship the file in the package "
                        "and import it by relative path, or import one of the standard type files meao "
                        "knows (MEC 037 MecAppDTypes.yaml, SOL001 etsi_nfv_sol001_*_types.yaml forge URLs)")
                if not mapped.is_file():
                    raise AppDError(f"{name}: import '{ref}' maps to {mapped}, which is missing from this "
                                    "meao installation")
                local_defs[ref] = str(mapped)
                continue
            target = path_inside(root, path.parent, ref, what=f"import '{ref}'", source=name)
            if not target.is_file():
                raise AppDError(f"{name}: import '{ref}' not found in the package "
                                f"(looked for {relative_name(root, target)})")
            if target in seen:
                continue
            seen.add(target)
            target_name = relative_name(root, target)
            guard_yaml(target, target_name)
            local.append(target_name)
            pending.append((target_name, target))
    return local, local_defs, documents
