"""`meao package …` against a live zero-config MEAO."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from tests.cli.conftest import CliServer
from tests.cli.helpers import failed, ok, ok_json

PACKAGE_COLUMNS = ["id", "appDId", "appName", "onboardingState", "operationalState", "usageState"]


def _onboard(meao: Callable, path: Path) -> dict:
    return ok_json(meao("package", "create", "--file", str(path), "--wait", "-f", "json"))


def test_create_file_under_file_root_with_wait_prints_the_onboarded_package(
        meao: Callable, cli_server: CliServer, place: Callable) -> None:
    pkg = place("mec-minimal", cli_server.pkg_root)
    result = meao("package", "create", "--file", str(pkg), "--wait", "-f", "json")
    info = ok_json(result)
    assert info["onboardingState"] == "ONBOARDED" and info["operationalState"] == "ENABLED"
    assert info["appName"] == "mec-minimal"
    assert info["checksum"]["hash"] == hashlib.sha256(pkg.read_bytes()).hexdigest()
    assert "uploading" not in result.stderr, "a file under MEAO_PKG_FILE_ROOT is read by the MEAO, not uploaded"


def test_create_file_without_wait_returns_once_the_meao_has_read_the_file(
        meao: Callable, cli_server: CliServer, place: Callable) -> None:
    pkg = place("mec-minimal", cli_server.pkg_root)
    pkg_id = ok(meao("package", "create", "--file", str(pkg), "--name", "edge-probe", "-f", "value", "-c", "id"))
    state = ok(meao("package", "show", pkg_id.strip(), "-c", "onboardingState", "-f", "value")).strip()
    assert state in ("PROCESSING", "ONBOARDED")


def test_list_json_shows_the_default_columns_and_show_selects_fields(
        meao: Callable, cli_server: CliServer, place: Callable) -> None:
    created = _onboard(meao, place("mec-minimal", cli_server.pkg_root))
    listed = ok_json(meao("package", "list", "-f", "json"))
    assert [list(row) for row in listed] == [PACKAGE_COLUMNS]
    assert listed[0]["id"] == created["id"] and listed[0]["appDId"] == created["appDId"]
    table = ok(meao("package", "list"))
    header, rule, row = table.splitlines()
    assert header.split() == PACKAGE_COLUMNS and set(rule.replace(" ", "")) == {"-"}
    assert row.split()[0] == created["id"]
    shown = ok(meao("package", "show", created["id"], "-c", "onboardingState", "-c", "appName", "-f", "value"))
    assert shown.splitlines() == ["ONBOARDED", "mec-minimal"]
    as_yaml = ok(meao("package", "show", created["id"], "-c", "usageState", "-f", "yaml"))
    assert as_yaml.strip() == "usageState: NOT_IN_USE"


def test_disable_enable_then_delete_with_disable_removes_the_package(
        meao: Callable, cli_server: CliServer, place: Callable) -> None:
    pkg_id = _onboard(meao, place("mec-minimal", cli_server.pkg_root))["id"]

    def state() -> str:
        return ok(meao("package", "show", pkg_id, "-c", "operationalState", "-f", "value")).strip()

    ok(meao("package", "disable", pkg_id))
    assert state() == "DISABLED"
    ok(meao("package", "enable", pkg_id))
    assert state() == "ENABLED"
    ok(meao("package", "delete", pkg_id, "--disable"))
    assert pkg_id in failed(meao("package", "show", pkg_id), 4)


def test_create_file_outside_file_root_falls_back_to_upload_with_progress(
        meao: Callable, cli_server: CliServer, place: Callable) -> None:
    pkg = place("mec-json-appd", cli_server.outside)
    result = meao("package", "create", "--file", str(pkg), "--wait", "--progress", "-f", "json")
    info = ok_json(result)
    assert info["onboardingState"] == "ONBOARDED" and info["appName"] == "mec-json-app"
    assert "MEAO_PKG_FILE_ROOT" in result.stderr, "the CLI says why it uploads"
    size = pkg.stat().st_size
    assert f"uploading {pkg.name}" in result.stderr and "(100%)" in result.stderr, result.stderr
    assert "\r" in result.stderr and f"{size / 1024:.1f} KiB / {size / 1024:.1f} KiB" in result.stderr


def test_upload_onboards_a_package_whose_fetch_failed(
        meao: Callable, cli_server: CliServer, place: Callable) -> None:
    pkg = place("mec-vm-app", cli_server.outside)
    created = ok_json(meao("package", "create", "--name", "vm-app", "--version", "1.0", "--checksum-file",
                           str(pkg), "--path", f"{cli_server.endpoint}/no/such/package.zip", "-f", "json"))
    # the in-process worker may already be fetching by the time the CLI reads the answer back
    assert created["onboardingState"] in ("CREATED", "UPLOADING")
    result = meao("package", "upload", created["id"], str(pkg), "--wait", "-f", "json")
    info = ok_json(result)
    assert info["id"] == created["id"] and info["onboardingState"] == "ONBOARDED"
    assert "uploading" not in result.stderr, "no progress bar when stderr is not a terminal"
    again = failed(meao("package", "upload", created["id"], str(pkg)), 5)
    assert "already ONBOARDED" in again


def test_upload_of_a_file_with_another_checksum_exits_1_before_sending(
        meao: Callable, cli_server: CliServer, place: Callable) -> None:
    good, other = place("mec-vm-app", cli_server.outside), place("mec-minimal", cli_server.outside)
    created = ok_json(meao("package", "create", "--name", "vm-app", "--version", "1.0", "--checksum-file",
                           str(good), "--path", f"{cli_server.endpoint}/missing.zip", "-f", "json"))
    err = failed(meao("package", "upload", created["id"], str(other)), 1)
    assert "created with checksum" in err and "hint:" in err


def test_wait_on_a_broken_package_exits_1_with_the_onboarding_failure(
        meao: Callable, cli_server: CliServer) -> None:
    from descriptors.examples.build import build_package

    broken = build_package("mec-minimal", cli_server.pkg_root / "broken",
                           tamper=lambda tree: (tree / "ChangeLog.txt").write_text("edited after signing\n"))
    result = meao("package", "create", "--file", str(broken), "--wait")
    err = failed(result, 1)
    assert "onboarding of package" in err and "ChangeLog.txt" in err, err
    assert "uploading the file instead" not in err, "a bad package is reported, not uploaded again"
    assert "meao package delete" in err


def test_create_with_both_file_and_path_is_a_usage_error(meao: Callable, cli_server: CliServer,
                                                         place: Callable) -> None:
    pkg = place("mec-minimal", cli_server.outside)
    err = failed(meao("package", "create", "--file", str(pkg), "--path", "http://x/p.zip"), 2)
    assert "either --file FILE or --path URI" in err
