"""meao.oss.client in-process: endpoint selection, manifest metadata, and the pollers on canned answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from meao.oss.client import (
    ClientProblem,
    ConfigError,
    EndpointUnreachable,
    MeaoClient,
    OperationFailed,
    WaitTimeout,
    read_manifest_metadata,
    resolve_endpoint,
)


@pytest.fixture()
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MEAO_ENDPOINT", "MEAO_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = tmp_path / "meao" / "client.yaml"
    path.parent.mkdir()
    path.write_text("endpoint: http://file:1\ntimeout: 7\nprofiles:\n  lab: {endpoint: 'http://lab:2', timeout: 9}\n")
    return path


def test_endpoint_precedence_is_option_profile_option_env_env_profile_file(
        config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_endpoint().url == "http://file:1" and resolve_endpoint().timeout == 7
    monkeypatch.setenv("MEAO_PROFILE", "lab")
    assert (resolve_endpoint().url, resolve_endpoint().timeout) == ("http://lab:2", 9)
    monkeypatch.setenv("MEAO_ENDPOINT", "http://env:3/")
    assert resolve_endpoint().url == "http://env:3", "MEAO_ENDPOINT beats MEAO_PROFILE"
    assert resolve_endpoint(profile="lab").url == "http://lab:2", "an explicit --os-profile beats MEAO_ENDPOINT"
    chosen = resolve_endpoint("http://opt:4", profile="lab", timeout=1.5)
    assert (chosen.url, chosen.timeout, chosen.source) == ("http://opt:4", 1.5, "--os-endpoint")


def test_without_any_configuration_the_endpoint_is_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEAO_ENDPOINT", raising=False)
    monkeypatch.delenv("MEAO_PROFILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert resolve_endpoint().url == "http://127.0.0.1:8080"


def test_an_unknown_profile_names_the_file_and_the_known_profiles(config: Path) -> None:
    with pytest.raises(ConfigError, match=r"'prod'.*profiles: lab"):
        resolve_endpoint(profile="prod")


def test_a_broken_config_file_does_not_block_an_explicit_endpoint(config: Path) -> None:
    config.write_text("endpoint: [unclosed\n")
    assert resolve_endpoint("http://opt:4").url == "http://opt:4"
    with pytest.raises(ConfigError, match="cannot read"):
        resolve_endpoint()


def test_manifest_metadata_names_the_package(tmp_path: Path) -> None:
    from descriptors.examples.build import build_package

    meta = read_manifest_metadata(build_package("mec-minimal", tmp_path))
    assert meta["vnf_product_name"] == "mec-minimal" and meta["vnf_package_version"] == "1.0"
    (tmp_path / "not.zip").write_bytes(b"nope")
    assert read_manifest_metadata(tmp_path / "not.zip") == {}


def _client(handler: Any) -> MeaoClient:
    return MeaoClient("http://meao.test", transport=httpx.MockTransport(handler))


def test_error_answers_become_client_problems_and_non_json_ones_say_so() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/gone"):
            return httpx.Response(404, json={"title": "Not Found", "status": 404, "detail": "gone"},
                                  headers={"Content-Type": "application/problem+json"})
        return httpx.Response(502, text="<html>bad gateway</html>", headers={"Content-Type": "text/html"})

    with _client(handler) as client, pytest.raises(ClientProblem) as problem:
        client.pkgm.get_package("gone")
    assert (problem.value.status, problem.value.detail) == (404, "gone")
    with _client(handler) as client, pytest.raises(ClientProblem) as problem:
        client.pkgm.get_package("x")
    assert problem.value.status == 502 and "is this endpoint a MEAO?" in problem.value.detail


def test_a_next_page_link_to_another_origin_is_not_followed_with_the_token() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, json=[{"id": "1"}],
                              headers={"Link": '<http://elsewhere.test/app_pkgm/v1/app_packages?m=x>; rel="next"'})

    with _client(handler) as client, pytest.raises(ClientProblem, match="outside the endpoint"):
        client.pkgm.list_packages()
    assert asked == ["http://meao.test/app_pkgm/v1/app_packages"]


def test_a_refused_connection_is_endpoint_unreachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with _client(handler) as client, pytest.raises(EndpointUnreachable, match="Connection refused"):
        client.pkgm.list_packages()


def test_wait_op_raises_the_error_of_a_failed_temp_operation() -> None:
    states = iter(["STARTING", "PROCESSING", "FAILED_TEMP"])
    error = {"title": "VIM error", "status": 503, "detail": "quota exceeded at pop1"}

    def handler(request: httpx.Request) -> httpx.Response:
        state = next(states)
        body = {"id": "op1", "lcmOperation": "INSTANTIATE", "operationState": state}
        return httpx.Response(200, json={**body, "error": error} if state == "FAILED_TEMP" else body)

    seen: list[str] = []
    with _client(handler) as client, pytest.raises(OperationFailed) as failure:
        client.lcm.wait_op("op1", timeout=10, on_poll=lambda op, _elapsed: seen.append(op["operationState"]))
    assert seen == ["STARTING", "PROCESSING", "FAILED_TEMP"]
    assert failure.value.problem == error and failure.value.resource["id"] == "op1"


def test_wait_package_gives_up_after_the_timeout_with_the_last_state() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "p1", "onboardingState": "PROCESSING"})

    with _client(handler) as client, pytest.raises(WaitTimeout) as timeout:
        client.pkgm.wait_package("p1", timeout=0.3)
    assert timeout.value.resource["onboardingState"] == "PROCESSING"


def test_instantiate_sends_the_hosts_and_served_area_and_returns_the_op_id() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(202, headers={"Location": "http://meao.test/app_lcm/v1/app_lcm_op_occs/op-9"})

    with _client(handler) as client:
        assert client.lcm.instantiate("a1", ["pop1", "pop2"], "cell-1") == "op-9"
        client.lcm.terminate("a1", graceful_timeout=30)
        client.lcm.operate("a1", "STOPPED")
    assert sent == [{"selectedMECHostInfo": [{"hostId": {"id": "pop1"}}, {"hostId": {"id": "pop2"}}],
                     "servedArea": "cell-1"},
                    {"terminationType": "GRACEFUL", "gracefulTerminationTimeout": 30},
                    {"changeStateTo": "STOPPED", "stopType": "FORCEFUL"}]


def test_the_host_column_is_the_host_the_meao_chose() -> None:
    from meao.oss.cli.app import _with_derived

    rows = _with_derived([{"id": "a1", "instantiationState": "INSTANTIATED",
                           "instantiatedAppState": {"operationalState": "STARTED"}, "mecPlatform": {"mecHostId": "pop2"}},
                          {"id": "a2", "instantiationState": "NOT_INSTANTIATED"}])
    assert [(r["id"], r["state"], r["host"]) for r in rows] == [("a1", "STARTED", "pop2"), ("a2", None, None)]
