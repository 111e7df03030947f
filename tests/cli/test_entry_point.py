"""The installed `meao` console script (pyproject.toml [project.scripts]) wires every command group."""

from __future__ import annotations

from pathlib import Path

import pytest

from meao.cli import main
from tests.cli.helpers import client_env, ok, run_meao

GROUPS = sorted(main.commands)


def test_the_script_lists_every_command_group(tmp_path: Path) -> None:
    listed = ok(run_meao("--help", env=client_env(None, tmp_path)))
    assert {"app", "auth", "host", "mep", "op", "package", "subscription", "serve", "worker"} <= set(GROUPS)
    for group in GROUPS:
        assert f"  {group} " in listed, f"`meao --help` does not list {group}"


@pytest.mark.parametrize("group", GROUPS)
def test_each_command_group_runs_from_the_script(group: str, tmp_path: Path) -> None:
    out = ok(run_meao(group, "--help", env=client_env(None, tmp_path)))
    assert out.startswith(f"Usage: meao {group}"), out[:200]
