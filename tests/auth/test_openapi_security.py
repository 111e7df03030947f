"""Each OpenAPI file declares its security: every operation names its scope and answers 401/403."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meao.api.security import prepare_spec
from meao.auth.scopes import SCOPES
from meao.config import load_settings

OPENAPI = Path(__file__).resolve().parents[2] / "openapi"
SPECS = {"mm1-app-pkgm.yaml": "app_pkgm", "mm1-app-lcm.yaml": "app_lcm", "granting.yaml": "granting",
         "ops.yaml": "ops"}
METHODS = ("get", "put", "post", "delete", "patch")


def _operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [(method, route, item[method]) for route, item in spec["paths"].items() for method in METHODS
            if method in item]


@pytest.mark.parametrize("name", list(SPECS))
def test_every_operation_needs_a_scope_of_its_api_and_documents_401_and_403(name: str) -> None:
    spec = yaml.safe_load((OPENAPI / name).read_text())
    api = SPECS[name]
    flow = spec["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/oauth2/token"
    assert set(flow["scopes"]) <= set(SCOPES) and all(s.startswith(f"{api}:") for s in flow["scopes"])
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for method, route, op in _operations(spec):
        where = f"{method.upper()} {route} in {name}"
        assert op.get("security"), f"{where} declares no security"
        oauth2 = [req["oauth2"] for req in op["security"] if "oauth2" in req]
        assert len(oauth2) == 1 and len(oauth2[0]) == 1, f"{where}: one oauth2 requirement with one scope"
        scope = oauth2[0][0]
        assert scope in flow["scopes"], f"{where}: {scope} is not a scope of the file"
        assert scope.endswith(":read") == (method == "get"), f"{where}: reads need :read, changes the other"
        assert {"bearer": []} in op["security"]
        for code in ("401", "403"):
            assert op["responses"].get(code) == {"$ref": f"#/components/responses/{code}"}, f"{where}: {code}"


def test_auth_none_serves_the_specs_without_security(tmp_path: Path) -> None:
    settings = load_settings(MEAO_AUTH="none", MEAO_DATA_DIR=str(tmp_path))
    spec = prepare_spec(OPENAPI / "mm1-app-pkgm.yaml", settings, "/app_pkgm/v1")
    assert not spec["components"]["securitySchemes"]
    assert all(op["security"] == [] for _m, _r, op in _operations(spec))


def test_opened_operations_lose_their_security_and_only_they(tmp_path: Path) -> None:
    settings = load_settings(MEAO_DATA_DIR=str(tmp_path),
                             MEAO_AUTH_OPEN_OPERATIONS="GET /ops/v1/mec_hosts, /ops/v1/mec_hosts/{hostId}/capacity")
    spec = prepare_spec(OPENAPI / "ops.yaml", settings)
    opened = {(m, r) for m, r, op in _operations(spec) if op["security"] == []}
    assert opened == {("get", "/mec_hosts"), ("get", "/mec_hosts/{hostId}/capacity")}


def test_jwt_mode_shows_the_external_token_url(tmp_path: Path) -> None:
    settings = load_settings(MEAO_AUTH="jwt", MEAO_DATA_DIR=str(tmp_path),
                             MEAO_AUTH_TOKEN_URL="https://idp.example/realms/mec/protocol/openid-connect/token")
    spec = prepare_spec(OPENAPI / "granting.yaml", settings)
    flow = spec["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "https://idp.example/realms/mec/protocol/openid-connect/token"
