"""Issue 16 item 7: with MEAO_TENANT_ISOLATION=true a token without a tenant no longer sees every tenant.
Only an operator does: a local client registered with ``--operator`` (the bootstrap admin is one), or an
external token carrying the MEAO_AUTH_OPERATOR_SCOPE scope (``meao:operator``). Any other token without a
tenant is a 403 ProblemDetails, on lists, reads and writes alike.

Real `meao serve` processes (SQLite and PostgreSQL in local mode, SQLite in jwt mode); the packages of
two tenants are written straight into the database (no onboarding is needed to list them).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from meao.db.models import AppPackage
from tests.auth.conftest import Served, bare_env, bearer, meao_cmd, start_serve
from tests.auth.idp import Idp, jwt_env, serve_jwks, sign
from tests.conftest import fresh_database

PACKAGES = "/app_pkgm/v1/app_packages"
SCOPES = ("app_pkgm:read", "app_pkgm:write", "app_lcm:read", "app_lcm:write")


@dataclass
class Isolated:
    """A served meao with tenant isolation on, its environment, and a package of each of two tenants."""

    served: Served
    env: dict[str, str]
    packages: dict[str, str]  # tenant → package id

    def register(self, *flags: str) -> httpx.Client:
        """An HTTP client with the token of a fresh client registered with ``flags``."""
        name = f"c-{uuid.uuid4().hex[:8]}"
        result = meao_cmd(self.env, "auth", "client", "create", name, *[f"--scope={s}" for s in SCOPES], *flags,
                          "-f", "json", cwd=self.served.data_dir.parent)
        assert result.returncode == 0, result.stderr
        return self.client_of(name, json.loads(result.stdout)["client_secret"])

    def client_of(self, client_id: str, secret: str) -> httpx.Client:
        resp = httpx.post(f"{self.served.base}/oauth2/token", data={"grant_type": "client_credentials"},
                          auth=(client_id, secret), timeout=30)
        assert resp.status_code == 200, resp.text
        return httpx.Client(base_url=self.served.base, headers=bearer(resp.json()["access_token"]), timeout=30)


def _seed_packages(db_url: str) -> dict[str, str]:
    engine = create_engine(db_url)
    try:
        with Session(engine) as session, session.begin():
            made = {tenant: AppPackage(app_pkg_name=f"pkg-{tenant}", app_pkg_version="1.0", tenant=tenant,
                                       checksum_algorithm="SHA-256", checksum_hash="0" * 64)
                    for tenant in ("t-a", "t-b")}
            session.add_all(made.values())
            session.flush()
            return {tenant: pkg.id for tenant, pkg in made.items()}
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def isolated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Isolated]:
    tmp = tmp_path_factory.mktemp(f"tenancy-{request.param}")
    with fresh_database(request.param, tmp) as db_url:
        env = bare_env(tmp / "var", MEAO_AUTH="local", MEAO_TENANT_ISOLATION="true", MEAO_DATABASE_URL=db_url,
                       MEAO_AUTH_TOKEN_BURST="1000")
        served = start_serve(tmp, env)
        try:
            yield Isolated(served, env, _seed_packages(db_url))
        finally:
            served.stop()


def _forbidden(resp: httpx.Response) -> None:
    assert resp.status_code == 403, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    detail = resp.json()["detail"]
    assert "names no tenant" in detail and "--operator" in detail, detail


def test_a_client_with_neither_tenant_nor_operator_is_403_on_lists_reads_and_writes(isolated: Isolated) -> None:
    with isolated.register() as plain:
        pkg = isolated.packages["t-a"]
        _forbidden(plain.get(PACKAGES))
        _forbidden(plain.get(f"{PACKAGES}/{pkg}"))
        _forbidden(plain.patch(f"{PACKAGES}/{pkg}", json={"operationalState": "ENABLED"}))
        _forbidden(plain.delete(f"{PACKAGES}/{pkg}"))
        _forbidden(plain.get("/app_lcm/v1/app_instances"))
        _forbidden(plain.get("/app_lcm/v1/app_lcm_op_occs"))
        _forbidden(plain.get("/app_lcm/v1/subscriptions"))
        _forbidden(plain.post("/app_lcm/v1/app_instances", json={"appDId": "any"}))
    with isolated.client_of(*_admin(isolated)) as admin:
        assert admin.get(f"{PACKAGES}/{pkg}").json()["operationalState"] == "DISABLED", "nothing changed"


def _admin(isolated: Isolated) -> tuple[str, str]:
    doc = json.loads((isolated.served.data_dir / "admin-credentials.json").read_text())
    return doc["client_id"], doc["client_secret"]


def test_an_operator_client_and_the_bootstrap_admin_see_every_tenant(isolated: Isolated) -> None:
    for http in (isolated.register("--operator"), isolated.client_of(*_admin(isolated))):
        with http:
            resp = http.get(PACKAGES)
            assert resp.status_code == 200, resp.text
            assert set(isolated.packages.values()) <= {p["id"] for p in resp.json()}


def test_a_tenants_client_sees_only_its_own(isolated: Isolated) -> None:
    with isolated.register("--tenant", "t-a") as tenant_a:
        assert [p["id"] for p in tenant_a.get(PACKAGES).json()] == [isolated.packages["t-a"]]
        assert tenant_a.get(f"{PACKAGES}/{isolated.packages['t-b']}").status_code == 404


def test_a_client_cannot_be_both_a_tenants_and_an_operator(isolated: Isolated) -> None:
    result = meao_cmd(isolated.env, "auth", "client", "create", f"c-{uuid.uuid4().hex[:8]}", "--scope=app_pkgm:read",
                      "--tenant", "t-a", "--operator", cwd=isolated.served.data_dir.parent)
    assert result.returncode != 0 and "not both" in result.stderr


# ------------------------------------------------------------------------------ an external issuer's tokens
@pytest.fixture(scope="module")
def jwt_isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Idp, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("tenancy-jwt")
    idp = Idp()
    idp.add_rsa("k1")
    with serve_jwks(idp):
        db_url = f"sqlite:///{tmp / 'meao.db'}"
        served = start_serve(tmp, jwt_env(tmp / "var", idp.url, MEAO_TENANT_ISOLATION="true",
                                          MEAO_DATABASE_URL=db_url))
        try:
            yield served, idp, _seed_packages(db_url)
        finally:
            served.stop()


def _jwt_get(served: Served, idp: Idp, path: str = PACKAGES, **claims: object) -> httpx.Response:
    return httpx.get(served.base + path, headers=bearer(sign(idp.keys["k1"], "RS256", "k1", **claims)), timeout=30)


def test_an_external_token_without_the_tenant_claim_is_403(jwt_isolated: tuple[Served, Idp, dict[str, str]]) -> None:
    served, idp, _ = jwt_isolated
    for path in (PACKAGES, "/app_lcm/v1/app_instances"):
        resp = _jwt_get(served, idp, path)
        assert resp.status_code == 403, resp.text
        assert "'tenant' claim" in resp.json()["detail"] and "meao:operator" in resp.json()["detail"]


def test_an_external_token_with_the_operator_scope_or_a_tenant_claim_is_let_in(
        jwt_isolated: tuple[Served, Idp, dict[str, str]]) -> None:
    served, idp, packages = jwt_isolated
    operator = _jwt_get(served, idp, scope="app_pkgm:read meao:operator")
    assert operator.status_code == 200, operator.text
    assert set(packages.values()) <= {p["id"] for p in operator.json()}
    tenant_b = _jwt_get(served, idp, tenant="t-b")
    assert [p["id"] for p in tenant_b.json()] == [packages["t-b"]]
    # the operator scope does not widen a token that names a tenant
    both = _jwt_get(served, idp, tenant="t-b", scope="app_pkgm:read meao:operator")
    assert [p["id"] for p in both.json()] == [packages["t-b"]]


def test_without_isolation_a_token_without_a_tenant_still_sees_everything(tmp_path: Path) -> None:
    """The default (MEAO_TENANT_ISOLATION off) is unchanged: one operator's installation."""
    served = start_serve(tmp_path, bare_env(tmp_path / "var", MEAO_AUTH="local"))
    try:
        doc = json.loads((served.data_dir / "admin-credentials.json").read_text())
        result = meao_cmd(bare_env(tmp_path / "var", MEAO_AUTH="local"), "auth", "client", "create", "plain",
                          "--scope=app_pkgm:read", "-f", "json", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        for client_id, secret in ((doc["client_id"], doc["client_secret"]),
                                  ("plain", json.loads(result.stdout)["client_secret"])):
            token = httpx.post(f"{served.base}/oauth2/token", data={"grant_type": "client_credentials"},
                               auth=(client_id, secret), timeout=30).json()["access_token"]
            assert httpx.get(served.base + PACKAGES, headers=bearer(token), timeout=30).status_code == 200
    finally:
        served.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_upgrade_makes_the_existing_admin_an_operator_and_no_one_else(backend: str, tmp_path: Path) -> None:
    """Migration 0014 on a database of before: `admin` keeps its view across tenants, others must choose."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from meao.db.migrate import MIGRATIONS

    with fresh_database(backend, tmp_path) as url:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", url)
        command.upgrade(cfg, "0013")
        engine = create_engine(url)
        with engine.begin() as conn:
            for client_id, tenant in (("admin", None), ("oss", None), ("tenant-a", "t-a")):
                conn.execute(text("INSERT INTO auth_client (client_id, secret_hash, scopes, tenant, created_at) "
                                  "VALUES (:id, 'x', '[\"app_pkgm:read\"]', :tenant, '2026-01-01')"),
                             {"id": client_id, "tenant": tenant})
        command.upgrade(cfg, "0014")
        with engine.begin() as conn:
            rows = dict(conn.execute(text("SELECT client_id, operator FROM auth_client")).all())
        assert {k: bool(v) for k, v in rows.items()} == {"admin": True, "oss": False, "tenant-a": False}
        command.downgrade(cfg, "0013")
        command.upgrade(cfg, "head")
        engine.dispose()
