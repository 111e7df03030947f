"""What `meao serve` does about access control at start: bootstrap, open mode, opened operations."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx

from tests.auth.conftest import bare_env, meao_cmd, start_serve
from tests.conftest import free_port

PACKAGES = "/app_pkgm/v1/app_packages"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_zero_config_serve_bootstraps_an_admin_client_once_and_the_cli_finds_it(tmp_path: Path) -> None:
    served = start_serve(tmp_path, bare_env(tmp_path / "var"))
    env = {k: v for k, v in bare_env(tmp_path).items() if k != "MEAO_DATA_DIR"}  # the CLI: ./var by default
    try:
        creds = tmp_path / "var" / "admin-credentials.json"
        doc = json.loads(creds.read_text())
        assert doc["client_id"] == "admin" and len(doc["client_secret"]) >= 32
        assert _mode(creds) == 0o600 and _mode(tmp_path / "var" / "auth-signing.key") == 0o600
        assert str(creds) in served.output(), "meao serve says where the credentials are"
        assert httpx.get(served.base + PACKAGES).status_code == 401
        # the operator CLI, run from the same directory, finds ./var/admin-credentials.json by itself
        cli = meao_cmd({**env, "MEAO_ENDPOINT": served.base}, "package", "list", "-f", "json", cwd=tmp_path)
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout) == []
        listed = meao_cmd(env, "auth", "client", "list", "-f", "json", cwd=tmp_path)
        clients = json.loads(listed.stdout)
        assert [c["client_id"] for c in clients] == ["admin"] and "ops:admin" in clients[0]["scope"]
        assert doc["client_secret"] not in listed.stdout + listed.stderr
    finally:
        served.stop()
    again = start_serve(tmp_path, bare_env(tmp_path / "var"))
    try:
        assert json.loads(creds.read_text()) == doc, "a second start keeps the existing admin"
        assert "created the OAuth 2.0 client" not in again.output()
    finally:
        again.stop()


def test_auth_none_is_open_on_loopback_and_says_so_loudly(tmp_path: Path) -> None:
    served = start_serve(tmp_path, bare_env(tmp_path / "var", MEAO_AUTH="none"))
    try:
        assert httpx.get(served.base + PACKAGES).status_code == 200
        assert "MEAO_AUTH=none" in served.output() and "WARNING" in served.output()
        assert not (tmp_path / "var" / "admin-credentials.json").exists()
    finally:
        served.stop()


def test_auth_none_on_a_reachable_address_needs_insecure_no_auth(tmp_path: Path) -> None:
    env = bare_env(tmp_path / "var", MEAO_AUTH="none")
    refused = meao_cmd(env, "serve", "--host", "0.0.0.0", "--port", str(free_port()), cwd=tmp_path)
    assert refused.returncode != 0
    assert "--insecure-no-auth" in refused.stderr and "MEAO_AUTH=none" in refused.stderr
    served = start_serve(tmp_path, env, "--host", "0.0.0.0", "--insecure-no-auth")
    try:
        assert httpx.get(served.base + PACKAGES).status_code == 200
        assert "WARNING" in served.output()
    finally:
        served.stop()


def test_operations_the_operator_opens_need_no_token_and_the_others_still_do(tmp_path: Path) -> None:
    served = start_serve(tmp_path, bare_env(tmp_path / "var", MEAO_AUTH_OPEN_OPERATIONS="GET /ops/v1/mec_hosts"))
    try:
        assert httpx.get(f"{served.base}/ops/v1/mec_hosts").status_code == 200
        assert httpx.post(f"{served.base}/ops/v1/mec_hosts", json={}).status_code == 401
        assert httpx.get(served.base + PACKAGES).status_code == 401
    finally:
        served.stop()
