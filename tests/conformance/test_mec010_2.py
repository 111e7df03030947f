"""MEC 010-2 v3.1.1 clause by clause: every resource, method and response code of clauses 7.3-7.5, and
every mandatory attribute of the data types in 6.2 that meao's Mm1 and granting APIs exchange.

The standard's tables come from ``mec010_2.json``, which ``python -m tests.conformance.extract`` makes
from the standard's text. A deviation meao keeps on purpose is listed once, with its reason, in
``deviations.py`` and shows here as an expected failure (strict: once meao conforms, the entry goes).
The static checks read our OpenAPI files; the live ones ask a running ``meao serve``.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import httpx
import pytest
import yaml

from tests.conformance import deviations
from tests.conformance.extract import OUT as TABLE_FILE
from tests.conformance.extract import SPEC_TEXT, extract
from tests.conftest import ROOT, Stack

TABLE = json.loads(TABLE_FILE.read_text(encoding="utf-8"))
SPECS = {"/app_pkgm/v1": "mm1-app-pkgm.yaml", "/app_lcm/v1": "mm1-app-lcm.yaml", "/granting/v1": "granting.yaml"}
UNKNOWN_ID = "00000000-0000-4000-8000-0000000000c0"


@cache
def spec(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "openapi" / name).read_text(encoding="utf-8"))


def operation(uri: str, method: str) -> dict[str, Any] | None:
    """Our OpenAPI operation for a URI as the standard writes it, or None."""
    base = next(b for b in SPECS if uri.startswith(b))
    item = spec(SPECS[base])["paths"].get(uri[len(base):]) or {}
    return item.get(method.lower())


def _cases(kind: str) -> list[Any]:
    out = []
    for resource in TABLE["resources"]:
        for uri in resource["uris"]:
            for method, entry in resource["methods"].items():
                label = f"{entry['clause']} {method} {uri}"
                if kind == "codes" and entry["supported"]:
                    for code in entry["codes"]:
                        why = deviations.STATUS_CODES.get((method, uri, code))
                        marks = [pytest.mark.xfail(reason=why, strict=True)] if why else []
                        out.append(pytest.param(uri, method, code, id=f"{label} {code}", marks=marks))
                elif kind == "unsupported" and not entry["supported"]:
                    out.append(pytest.param(uri, method, entry["status"], id=label))
                elif kind == "unknown-id" and entry["supported"] and "{" in uri and 404 in entry["codes"]:
                    out.append(pytest.param(uri, method, id=label))
    return out


def test_the_table_is_what_the_standard_says() -> None:
    """mec010_2.json is the extract of the standard's text as it is now (re-run the extract otherwise)."""
    if not SPEC_TEXT.is_file():
        pytest.fail(f"{SPEC_TEXT} is missing: ../shared/specs must sit beside the project")
    assert extract(SPEC_TEXT.read_text(encoding="utf-8")) == TABLE, "run python -m tests.conformance.extract"
    assert len(TABLE["resources"]) >= 20 and sum(len(r["methods"]) for r in TABLE["resources"]) >= 95


@pytest.mark.parametrize(("uri", "method", "code"), _cases("codes"))
def test_each_supported_method_documents_the_codes_the_standard_lists(uri: str, method: str, code: int) -> None:
    op = operation(uri, method)
    assert op is not None, f"{method} {uri} is supported on Mm1 but missing from openapi/"
    assert str(code) in op["responses"], f"{method} {uri} does not document {code}"


def _schema(name: str) -> dict[str, Any] | None:
    for file in SPECS.values():
        found = spec(file).get("components", {}).get("schemas", {}).get(name)
        if found is not None:
            return found
    return None


def _flatten(schema: dict[str, Any], file_schemas: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(required, properties) of a schema, through $ref and allOf."""
    if "$ref" in schema:
        return _flatten(file_schemas[schema["$ref"].rsplit("/", 1)[1]], file_schemas)
    required, props = set(schema.get("required", [])), set(schema.get("properties", {}))
    for sub in schema.get("allOf", []):
        r, p = _flatten(sub, file_schemas)
        required, props = required | r, props | p
    return required, props


def _attribute_cases() -> list[Any]:
    out = []
    all_schemas = {k: v for f in SPECS.values() for k, v in spec(f).get("components", {}).get("schemas", {}).items()}
    for type_name, entry in TABLE["dataTypes"].items():
        schema = _schema(type_name)
        if schema is None or schema.get("type") not in (None, "object") or "properties" not in str(schema):
            continue  # not exchanged over meao's Mm1 (the AppD is a file), or not an object
        for attribute, cardinality in entry["attributes"].items():
            if cardinality.startswith("1"):
                why = deviations.REQUIRED_ATTRIBUTES.get((type_name, attribute))
                marks = [pytest.mark.xfail(reason=why, strict=True)] if why else []
                out.append(pytest.param(type_name, attribute, all_schemas, marks=marks,
                                        id=f"{entry['table']} {type_name}.{attribute}"))
    return out


@pytest.mark.parametrize(("type_name", "attribute", "schemas"), _attribute_cases())
def test_each_mandatory_attribute_is_required(type_name: str, attribute: str, schemas: dict[str, Any]) -> None:
    required, props = _flatten(_schema(type_name) or {}, schemas)
    assert attribute in props, f"{type_name} has no attribute {attribute}"
    assert attribute in required, f"{type_name}.{attribute} has cardinality 1 but is not required"


# ------------------------------------------------------------------------------------ against a server
def _url(stack: Stack, uri: str) -> str:
    path = uri
    for name in ("appPkgId", "appDId", "subscriptionId", "appInstanceId", "appLcmOpOccId", "grantId"):
        path = path.replace("{" + name + "}", UNKNOWN_ID)
    return stack.base + path


@pytest.mark.parametrize(("uri", "method", "status"), _cases("unsupported"))
def test_each_unsupported_method_answers_what_its_clause_says(stack: Stack, uri: str, method: str,
                                                              status: int) -> None:
    resp = httpx.request(method, _url(stack, uri), json={}, timeout=30)
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"] == "application/problem+json"
    if status == 405:
        assert method not in resp.headers["Allow"], resp.headers["Allow"]


@pytest.mark.parametrize(("uri", "method"), _cases("unknown-id"))
def test_an_unknown_id_is_404_whatever_the_body(stack: Stack, uri: str, method: str) -> None:
    """"A client provided a URI that cannot be mapped to a valid resource URI" (every table's 404)."""
    resp = httpx.request(method, _url(stack, uri), json={}, timeout=30)
    assert resp.status_code == 404, resp.text
    assert resp.headers["Content-Type"] == "application/problem+json"
