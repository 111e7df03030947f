"""`meao host …`: the MEC host inventory from the terminal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from tests.cli.helpers import failed, ok, ok_json


def test_host_set_list_show_capacity_delete(meao: Callable, tmp_path: Path) -> None:
    doc = {"mec_hosts": [
        {"id": "cli-pop1", "cloud": "nowhere", "availabilityZone": "az1", "servedAreas": ["cell-1"],
         "latencyMs": {"cell-1": 3}, "networks": {"default": "net-a"}},
        {"id": "cli-pop2", "cloud": "nowhere", "services": [{"serName": "RNIS", "version": "2.2.1"}]}]}
    hosts_file = tmp_path / "hosts.yaml"
    hosts_file.write_text(yaml.safe_dump(doc))
    try:
        made = ok_json(meao("host", "set", str(hosts_file), "-f", "json"))
        assert [h["id"] for h in made] == ["cli-pop1", "cli-pop2"]
        ids = ok(meao("host", "list", "-c", "id", "-f", "value")).split()
        assert {"cli-pop1", "cli-pop2"} <= set(ids)
        shown = ok_json(meao("host", "show", "cli-pop1", "-f", "json"))
        assert shown["queue"] == "mecpm.cli-pop1" and shown["latencyMs"] == {"cell-1": 3}
        assert "nowhere" in failed(meao("host", "capacity", "cli-pop1"), 5)  # 409: clouds.yaml lacks it
        assert "cli-missing" in failed(meao("host", "show", "cli-missing"), 4)
    finally:
        ok(meao("host", "delete", "cli-pop1", "cli-pop2"))
    assert "cli-pop1" not in ok(meao("host", "list", "-c", "id", "-f", "value")).split()


def test_host_set_with_an_invalid_host_prints_the_problem(meao: Callable, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"id": "cli-bad", "cloud": "c", "colour": "red"}))
    assert "colour" in failed(meao("host", "set", str(bad)), 1)
