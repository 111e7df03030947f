"""`meao app …` and `meao op …` without MEC hosts (the full lifecycle by CLI needs the OpenStack test bed)."""

from __future__ import annotations

from collections.abc import Callable

from tests.cli.conftest import CliServer
from tests.cli.helpers import failed, ok, ok_json


def _appd_id(meao: Callable, cli_server: CliServer, place: Callable) -> str:
    pkg = place("mec-minimal", cli_server.pkg_root)
    return ok_json(meao("package", "create", "--file", str(pkg), "--wait", "-f", "json"))["appDId"]


def test_app_create_list_show_delete(meao: Callable, cli_server: CliServer, place: Callable) -> None:
    appd_id = _appd_id(meao, cli_server, place)
    created = ok_json(meao("app", "create", appd_id, "--name", "probe-1", "--description", "cli test",
                           "-f", "json"))
    assert created["instantiationState"] == "NOT_INSTANTIATED" and created["appInstanceName"] == "probe-1"
    listed = ok_json(meao("app", "list", "-f", "json"))
    assert listed == [{"id": created["id"], "appName": "mec-minimal", "instantiationState": "NOT_INSTANTIATED",
                       "state": None, "host": None}]
    shown = ok(meao("app", "show", created["id"], "-c", "appDId", "-c", "appInstanceDescription", "-f", "value"))
    assert shown.splitlines() == [appd_id, "cli test"]
    assert ok(meao("op", "list", "--instance", created["id"], "-f", "value")) == ""
    ok(meao("app", "delete", created["id"]))
    assert failed(meao("app", "show", created["id"]), 4)
    in_use = ok(meao("package", "list", "-c", "usageState", "-f", "value")).strip()
    assert in_use == "NOT_IN_USE", "deleting the last instance frees the package"


def test_app_create_of_an_unknown_appd_exits_4_pointing_at_packages(meao: Callable) -> None:
    err = failed(meao("app", "create", "no-such-appd"), 4)
    assert "no-such-appd" in err and "meao package list" in err


def test_app_instantiate_with_no_host_that_fits_prints_the_problem_details_and_exits_1(
        meao: Callable, cli_server: CliServer, place: Callable) -> None:
    """--host is only a preference (selectedMECHostInfo applies to Mm3, MEC 010-2 table 6.2.2.7.2-1 note 2):
    an unknown one is ignored, and with no host in the inventory nothing fits."""
    appd_id = _appd_id(meao, cli_server, place)
    app_id = ok_json(meao("app", "create", appd_id, "-f", "json"))["id"]
    err = failed(meao("app", "instantiate", app_id, "--host", "no-such-pop", "--area", "cell-1", "--wait"), 1)
    assert "No MEC host fits (HTTP 422)" in err and "host list is empty" in err
    assert ok(meao("op", "list", "--instance", app_id, "-f", "value")) == "", "no operation was started"


def test_app_operate_rejects_a_graceful_timeout_for_a_start(meao: Callable) -> None:
    err = failed(meao("app", "operate", "any", "--state", "STARTED", "--graceful-timeout", "5"), 2)
    assert "--graceful-timeout" in err
