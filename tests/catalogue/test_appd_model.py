"""The AppD's stored form (meao/catalogue/appd/model.py): what a package row holds reads back as the same AppD."""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict
from pathlib import Path

import pytest

from descriptors.examples.build import build_package
from meao.catalogue.appd import AppD, load_appd

EXAMPLES = {
    "mec-vm-app": "Definitions/mec_vm_app.yaml",  # MEC 037 TOSCA, SwImage artifacts
    "mec-minimal": "Definitions/mec_minimal.yaml",  # MEC 037 TOSCA, the least an AppD may say
    "mec-json-appd": "Definitions/appd.json",  # MEC 010-2 document
}


def _example_appd(tmp_path: Path, name: str) -> AppD:
    archive = build_package(name, tmp_path / "dist")
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(tmp_path / name)
    return load_appd(tmp_path / name, EXAMPLES[name])


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_stored_appd_of_each_example_reads_back_equal(tmp_path: Path, name: str) -> None:
    appd = _example_appd(tmp_path, name)

    assert appd.to_dict() == asdict(appd)
    assert AppD.from_dict(asdict(appd)) == appd
    # what the JSON column gives back: lists, dicts, strings and numbers only
    assert AppD.from_dict(json.loads(json.dumps(appd.to_dict()))) == appd
    assert AppD.from_stored(json.loads(json.dumps(appd.to_dict()))) == appd


def test_stored_appd_keeps_its_parts_typed(tmp_path: Path) -> None:
    stored = json.loads(json.dumps(_example_appd(tmp_path, "mec-vm-app").to_dict()))

    appd = AppD.from_dict(stored)

    assert appd.computes[0].vdu_id == stored["computes"][0]["vdu_id"]
    assert appd.sw_images[0].checksum.hash == stored["sw_images"][0]["checksum"]["hash"]
    assert [cpd.id for cpd in appd.ext_cpds] == [cpd["id"] for cpd in stored["ext_cpds"]]


@pytest.mark.parametrize("stored", [None, {}])
def test_package_without_a_stored_appd_reads_as_an_appd_that_asks_for_nothing(stored: dict | None) -> None:
    appd = AppD.from_stored(stored)

    assert appd == AppD.empty()
    assert (appd.computes, appd.sw_images, appd.ext_cpds) == ([], [], [])
    assert (appd.app_traffic_rules, appd.app_dns_rules, appd.app_service_required) == ([], [], [])
    assert (appd.app_latency, appd.stop_timeout_s, appd.terminate_timeout_s) == (None, None, None)
