"""Extract MEC 010-2 v3.1.1's resource tables (clauses 7.3-7.5) and data type tables (clause 6.2) from the
standard's text into ``mec010_2.json``, the machine-readable table tests/conformance walks.

    .venv/bin/python -m tests.conformance.extract [path to ETSI-GS-MEC-010-2-v3.1.1.txt]

The text is ../shared/specs/ETSI-GS-MEC-010-2-v3.1.1.txt by default. Run it again when the standard's
text changes, and review the diff of mec010_2.json like code.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPEC_TEXT = HERE.parents[2] / "shared" / "specs" / "ETSI-GS-MEC-010-2-v3.1.1.txt"
OUT = HERE / "mec010_2.json"

_RESOURCE = re.compile(r"^\[Heading3\] (7\.[345]\.\d+)Resource: (.+)$")
_URI = re.compile(r"^Resource URI: \{apiRoot\}(\S+?)\.?$")
_METHOD = re.compile(r"^\[Heading5\] (7\.[345]\.\d+\.3\.\d+)(GET|POST|PUT|PATCH|DELETE)$")
_CODE = re.compile(r"\|\s*(\d{3}) [A-Z][A-Za-z ]*?\s*\|")
_NOT_SUPPORTED_STATUS = re.compile(r'"(\d{3}) [A-Za-z ]+" response')
_TYPE_TABLE = re.compile(r"^\[TH\] Table (6\.2\.\d+\.\d+\.2-1): (?:Definition of the )?[Aa]ttributes of (?:the )?(\w+)")
_CARDINALITY = re.compile(r"^(\d\.\.[\dN*]|\d)$")


def resources(lines: list[str]) -> list[dict[str, Any]]:
    """Clauses 7.3-7.5: each resource's URIs, and per method whether Mm1 has it and with which codes."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    method: dict[str, Any] | None = None
    for line in lines:
        if line.startswith("[Heading") and not line.startswith("[Heading5]"):
            method = None
        if m := _RESOURCE.match(line):
            current = {"clause": m.group(1), "resource": m.group(2).strip(), "uris": [], "methods": {}}
            out.append(current)
            continue
        if re.match(r"^\[Heading[123]\]", line):
            current = None  # another clause: no more of this resource
        if current is None:
            continue
        if m := _URI.match(line):
            current["uris"].append(m.group(1).rstrip("/"))
        elif m := _METHOD.match(line):
            method = {"clause": m.group(1), "supported": None, "codes": []}
            current["methods"][m.group(2)] = method
        elif method is not None:
            text = line.strip()
            if method["supported"] is None and text:
                if re.match(r"(This method is )?[Nn]ot [Ss]upported", text):
                    method["supported"] = False
                    status = _NOT_SUPPORTED_STATUS.search(text)
                    method["status"] = int(status.group(1)) if status else 405
                    continue
                method["supported"] = True
            if method["supported"] and "Mm3 only" in text:
                method["supported"], method["status"] = False, 405  # not on Mm1
            method["codes"] += [int(c) for c in _CODE.findall(line) if int(c) not in method["codes"]]
    return [r for r in out if r["uris"]]  # notification endpoints live at the client


def data_types(lines: list[str]) -> dict[str, dict[str, Any]]:
    """Clause 6.2: each data type's top-level attributes with their cardinality."""
    out: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in lines:
        if m := _TYPE_TABLE.match(line):
            current = {"table": m.group(1), "attributes": {}}
            out.setdefault(m.group(2), current)
            continue
        if current is None:
            continue
        if line.startswith("</TABLE>"):
            current = None
        else:  # "name | cardinality | type | …" or "name | type | cardinality | …"; nested names start with ">"
            cells = [c.strip() for c in line.split("|")]
            cardinality = next((c for c in cells[1:3] if _CARDINALITY.match(c)), None)
            if cardinality and re.fullmatch(r"\w+", cells[0]):
                current["attributes"][cells[0]] = cardinality
    return out


def extract(text: str) -> dict[str, Any]:
    lines = text.splitlines()
    return {"source": "ETSI GS MEC 010-2 V3.1.1", "resources": resources(lines), "dataTypes": data_types(lines)}


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SPEC_TEXT
    table = extract(source.read_text(encoding="utf-8"))
    OUT.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    methods = sum(len(r["methods"]) for r in table["resources"])
    print(f"{OUT.name}: {len(table['resources'])} resources, {methods} methods, "
          f"{len(table['dataTypes'])} data types from {source}")


if __name__ == "__main__":
    main()
