"""The console's vendored chart library is exactly what console/package-lock.json pins (console/build.sh)."""

from __future__ import annotations

import hashlib
import json
import re

from tests.conftest import ROOT

VENDOR = ROOT / "meao" / "console" / "static" / "vendor"


def test_vendored_uplot_is_the_version_the_lock_file_pins() -> None:
    lock = json.loads((ROOT / "console" / "package-lock.json").read_text())
    package = json.loads((ROOT / "console" / "package.json").read_text())
    locked = lock["packages"]["node_modules/uplot"]["version"]
    assert package["dependencies"]["uplot"] == locked, "package.json pins the version the lock file holds"
    banner = re.search(r"uPlot \(v(\d+\.\d+\.\d+)\)", (VENDOR / "uPlot.esm.js").read_text()[:600])
    assert banner and banner.group(1) == locked, f"vendored uPlot {banner and banner.group(1)}, lock file {locked}"
    manifest = json.loads((VENDOR / "vendor.json").read_text())["uplot"]
    assert manifest["version"] == locked and manifest["license"] == "MIT"
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, f"{name} changed since build.sh"
    assert "MIT" in (VENDOR / "uPlot.LICENSE").read_text() or "Permission is hereby granted" in (
        VENDOR / "uPlot.LICENSE").read_text()


def test_the_pages_load_nothing_from_elsewhere() -> None:
    """No CDN: every script, stylesheet and module import is a relative path inside the package."""
    static = ROOT / "meao" / "console" / "static"
    html = (static / "index.html").read_text()
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not re.match(r"^[a-z]+:|^//", ref), ref
        assert (static / ref).is_file(), ref
    for module in static.rglob("*.js"):
        imports = re.findall(r"""^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]""", module.read_text(),
                             re.MULTILINE)
        for ref in imports:
            assert ref.startswith("."), f"{module.name} imports {ref}"
            assert (module.parent / ref).resolve().is_file(), f"{module.name} imports missing {ref}"


def test_no_page_script_parses_html() -> None:
    """Names and errors are attacker-controlled: the console builds DOM nodes, never HTML strings."""
    js = ROOT / "meao" / "console" / "static" / "js"
    for module in js.rglob("*.js"):
        source = module.read_text()
        for sink in (r"innerHTML", r"outerHTML\s*=(?!=)", r"insertAdjacentHTML", r"document\.write", r"\beval\(",
                     r"new Function", r"DOMParser", r"createContextualFragment"):
            assert not re.search(sink, source), f"{module.relative_to(js)} matches {sink}"
