"""A live meao with access control on (MEAO_AUTH=local), its clients and tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cli.helpers import run_meao
from tests.conftest import (
    REDIS,
    Stack,
    free_port,
    fresh_database,
    launch_stack,
    meao_free_environ,
    require_service,
    wait_for,
)

# Redis databases 11-15 belong to the other live stacks of the suite
AUTH_REDIS_DB = {"sqlite": 10, "postgresql": 9}


@dataclass
class AuthStack:
    """A running meao with MEAO_AUTH=local (tenant isolation on), and helpers to get tokens from it."""

    stack: Stack

    @property
    def base(self) -> str:
        return self.stack.base

    @property
    def env(self) -> dict[str, str]:
        return self.stack.env

    def admin(self) -> tuple[str, str]:
        """The bootstrap admin client's id and secret, as `meao serve` wrote them."""
        doc = json.loads((self.stack.data_dir / "admin-credentials.json").read_text())
        return doc["client_id"], doc["client_secret"]

    def meao(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``meao ARGS`` on the stack's database (the `meao auth` commands work there, not over HTTP)."""
        return run_meao(*args, env=self.env)

    def register(self, name: str, *scopes: str, tenant: str | None = None,
                 operator: bool | None = None) -> tuple[str, str]:
        """Register a client through `meao auth client create` and return its id and secret.

        Without a tenant the client is an operator unless ``operator=False``: under tenant isolation a
        client with neither sees nothing, and most tests here are about scopes, not tenants.
        """
        operator = tenant is None if operator is None else operator
        args = ["auth", "client", "create", name, "-f", "json", *[f"--scope={s}" for s in scopes]]
        result = self.meao(*args, *(["--tenant", tenant] if tenant else []), *(["--operator"] if operator else []))
        assert result.returncode == 0, result.stderr
        doc = json.loads(result.stdout)
        return doc["client_id"], doc["client_secret"]

    def token_response(self, client_id: str, secret: str, scope: str | None = None) -> httpx.Response:
        data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
        return httpx.post(f"{self.base}/oauth2/token", data=data, auth=(client_id, secret), timeout=30)

    def token(self, client_id: str, secret: str, scope: str | None = None) -> str:
        """An access token of the client (optionally narrowed to ``scope``)."""
        resp = self.token_response(client_id, secret, scope)
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]

    def client_with(self, *scopes: str, tenant: str | None = None, name: str | None = None,
                    operator: bool | None = None) -> httpx.Client:
        """An HTTP client on the stack sending a token of a fresh client with exactly ``scopes``."""
        client_id, secret = self.register(name or f"c{os.urandom(4).hex()}", *scopes, tenant=tenant,
                                          operator=operator)
        return httpx.Client(base_url=self.base, timeout=30,
                            headers={"Authorization": f"Bearer {self.token(client_id, secret)}"})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def auth_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthStack]:
    """`meao serve` + `meao worker` with MEAO_AUTH=local and MEAO_TENANT_ISOLATION=true, zero auth setup."""
    require_service("Redis", REDIS)
    backend = request.param
    base_dir = tmp_path_factory.mktemp(f"auth-{backend}")
    with fresh_database(backend, base_dir) as db_url:
        stack = launch_stack(base_dir, db_url, AUTH_REDIS_DB[backend],
                             {"MEAO_AUTH": "local", "MEAO_TENANT_ISOLATION": "true",
                              "MEAO_AUTH_CLIENT_CACHE_S": "1",
                              # every test client asks from 127.0.0.1: the throttle has its own tests
                              "MEAO_AUTH_TOKEN_BURST": "100000"})
        try:
            yield AuthStack(stack)
        finally:
            stack.stop()


@dataclass
class Served:
    """One `meao serve` process with an embedded worker (no broker), for mode-specific tests."""

    proc: subprocess.Popen
    base: str
    log: Path
    data_dir: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def bare_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """An environment with no MEAO_* from the caller: zero configuration plus ``extra``."""
    env = meao_free_environ()
    env.update({"MEAO_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1", **extra})
    return env


def meao_cmd(env: dict[str, str], *args: str, cwd: Path | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``meao ARGS`` in a subprocess (``python -m meao.cli``), output as text, exit status not checked."""
    return subprocess.run([sys.executable, "-m", "meao.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def start_serve(tmp: Path, env: dict[str, str], *args: str, scheme: str = "http",
                verify: ssl.SSLContext | bool = True) -> Served:
    """Start `meao serve --port N ARGS` and wait until it answers (any HTTP status counts)."""
    port = free_port()
    log = tmp / f"serve-{port}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "meao.cli", "serve", "--port", str(port), *args], cwd=tmp,
                                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    served = Served(proc, f"{scheme}://127.0.0.1:{port}", log, Path(env["MEAO_DATA_DIR"]))

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"meao serve exited; log:\n{served.output()[-3000:]}")
        try:
            httpx.get(f"{served.base}/app_pkgm/v1/app_packages", timeout=1, verify=verify)
            return True
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 60, 0.2, "meao serve to answer")
    except BaseException:
        served.stop()
        raise
    return served
