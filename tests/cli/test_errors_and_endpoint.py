"""Exit codes, ProblemDetails messages and endpoint selection of the OSS CLI."""

from __future__ import annotations

from collections.abc import Callable

from tests.cli.conftest import CliServer
from tests.cli.helpers import client_env, failed, ok, ok_json, run_meao
from tests.conftest import free_port


def test_unknown_package_exits_4_with_the_problem_details_and_no_traceback(meao: Callable) -> None:
    err = failed(meao("package", "show", "no-such-package"), 4)
    assert "Not Found (HTTP 404): application package no-such-package does not exist" in err
    assert "hint:" in err and "meao package list" in err


def test_unknown_op_occurrence_exits_4(meao: Callable) -> None:
    assert "no-such-op" in failed(meao("op", "show", "no-such-op"), 4)


def test_deleting_an_enabled_package_exits_5_conflict(meao: Callable, cli_server: CliServer,
                                                      place: Callable) -> None:
    pkg = place("mec-minimal", cli_server.pkg_root)
    pkg_id = ok_json(meao("package", "create", "--file", str(pkg), "--wait", "-f", "json"))["id"]
    err = failed(meao("package", "delete", pkg_id), 5)
    assert "Conflict (HTTP 409)" in err and "ENABLED" in err
    assert "already enabled" in failed(meao("package", "enable", pkg_id), 5)


def test_bad_filter_exits_1_with_the_servers_explanation(meao: Callable) -> None:
    err = failed(meao("package", "list", "--filter", "not-a-filter"), 1)
    assert "(HTTP 400)" in err and "not-a-filter" in err


def test_unreachable_endpoint_exits_3_naming_the_url_and_its_source(meao: Callable) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    err = failed(meao("package", "list", "--os-endpoint", url), 3)
    assert f"cannot reach the MEAO at {url}/app_pkgm/v1/app_packages" in err
    assert "--os-endpoint" in err and "meao serve" in err


def test_endpoint_from_a_config_profile_is_used_and_named_when_unreachable(
        cli_server: CliServer, tmp_path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "meao").mkdir()
    (tmp_path / "meao" / "client.yaml").write_text(
        f"endpoint: {dead}\nprofiles:\n  lab:\n    endpoint: {cli_server.endpoint}\n    timeout: 10\n")
    env = client_env(None, tmp_path)
    assert ok_json(run_meao("package", "list", "--os-profile", "lab", "-f", "json", env=env)) == []
    assert ok_json(run_meao("package", "list", "-f", "json", env={**env, "MEAO_PROFILE": "lab"})) == []
    err = failed(run_meao("package", "list", env=env), 3)
    assert dead in err and str(tmp_path / "meao" / "client.yaml") in err
    env_wins = {**env, "MEAO_ENDPOINT": cli_server.endpoint}
    ok(run_meao("package", "list", env=env_wins))
    err = failed(run_meao("package", "list", "--os-profile", "nope", env=env), 2)
    assert "profile 'nope'" in err and "lab" in err


def test_help_documents_the_exit_codes(meao: Callable) -> None:
    out = ok(meao("--help"))
    assert "Exit codes" in out and "3 endpoint unreachable" in out and "5 conflict (409)" in out
    assert {"package", "app", "op", "subscription"} <= set(out.split())


def test_a_wrong_server_setting_does_not_stop_client_commands(tmp_path) -> None:
    """OSS commands read the client's environment only: a bad MEAO_VIM_DRIVER is the server's business."""
    url = f"http://127.0.0.1:{free_port()}"
    env = client_env(url, tmp_path, MEAO_VIM_DRIVER="vmware", MEAO_HEARTBEAT_S="soon")
    err = failed(run_meao("package", "list", env=env), 3)
    assert f"cannot reach the MEAO at {url}" in err and "MEAO_VIM_DRIVER" not in err
