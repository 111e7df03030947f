"""`--wait` on LCM operations, in-process on canned Mm1 answers (the real lifecycle needs MEC hosts).

The live-server tests cannot start an operation without the OpenStack test bed, so these drive the same
commands through click's runner with the client's HTTP transport replaced by canned answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner

from meao.oss.cli import invocation, register
from meao.oss.client import MeaoClient

OP_URL = "http://meao.test/app_lcm/v1/app_lcm_op_occs/op-1"


def _root() -> click.Group:
    @click.group()
    def root() -> None:
        """Test root standing in for `meao`."""

    register(root)
    return root


@pytest.fixture()
def canned(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str], dict[str, Any] | None], None]:
    """Answer instantiate with 202 and the op occurrence with the given successive states."""
    def install(states: list[str], error: dict[str, Any] | None = None) -> None:
        seq: Iterator[str] = iter(states)
        last = {"state": states[0]}

        def handler(request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                return httpx.Response(202, headers={"Location": OP_URL})
            last["state"] = next(seq, last["state"])
            body = {"id": "op-1", "lcmOperation": "INSTANTIATE", "operationState": last["state"],
                    "appInstanceId": "app-1"}
            if last["state"] == "FAILED_TEMP" and error:
                body["error"] = error
            return httpx.Response(200, json=body)

        monkeypatch.setattr(invocation, "MeaoClient", lambda url, timeout: MeaoClient(
            url, timeout, transport=httpx.MockTransport(handler)))

    return install


def _instantiate(*extra: str) -> Any:
    return CliRunner().invoke(_root(), ["app", "instantiate", "app-1", "--host", "pop1", "--os-endpoint",
                                        "http://meao.test", *extra])


def test_instantiate_wait_shows_a_live_status_line_and_prints_the_completed_op(canned: Callable) -> None:
    canned(["STARTING", "PROCESSING", "COMPLETED"])
    result = _instantiate("--wait", "--progress", "-f", "value", "-c", "id", "-c", "operationState")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["op-1", "COMPLETED"]
    assert "\rINSTANTIATE op-1: STARTING (0s)" in result.stderr
    assert "INSTANTIATE op-1: COMPLETED" in result.stderr and result.stderr.endswith("\n")


def test_instantiate_wait_exits_1_with_the_problem_details_of_a_failed_op(canned: Callable) -> None:
    canned(["PROCESSING", "FAILED_TEMP"], {"title": "VIM error", "status": 503,
                                           "detail": "quota exceeded at pop1"})
    result = _instantiate("--wait")
    assert result.exit_code == 1
    assert "instantiate operation op-1 failed: VIM error (HTTP 503): quota exceeded at pop1" in result.stderr
    assert "meao op retry op-1" in result.stderr and "meao op fail op-1" in result.stderr
    assert "INSTANTIATE op-1: PROCESSING" in result.stderr, "without a terminal: one line per state"
    assert result.stdout == ""


def test_instantiate_wait_gives_up_with_exit_6_after_the_wait_timeout(canned: Callable) -> None:
    canned(["PROCESSING"])
    result = _instantiate("--wait", "--wait-timeout", "0.5")
    assert result.exit_code == 6
    assert "stopped waiting" in result.stderr and "meao op show op-1" in result.stderr


def test_instantiate_without_wait_prints_the_starting_op(canned: Callable) -> None:
    canned(["STARTING"])
    result = _instantiate("-f", "json")
    assert result.exit_code == 0
    assert '"operationState": "STARTING"' in result.stdout
