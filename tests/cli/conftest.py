"""A live zero-config `meao serve` (embedded worker, SQLite) for the CLI tests, and the packages they use."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cli.helpers import client_env, run_meao
from tests.conftest import free_port, meao_free_environ, wait_for


@dataclass
class CliServer:
    """One running `meao serve` and the directory it may read file:// packages from."""

    endpoint: str
    pkg_root: Path
    outside: Path  # a directory the MEAO may not read: packages there must be uploaded
    config_home: Path

    @property
    def pkgm(self) -> str:
        return f"{self.endpoint}/app_pkgm/v1"

    @property
    def lcm(self) -> str:
        return f"{self.endpoint}/app_lcm/v1"


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def serve(base: Path, **extra_env: str) -> Iterator[CliServer]:
    """`meao serve` with no broker: jobs run in-process; data, file root and cwd in ``base``; ``extra_env``
    adds MEAO_* settings."""
    server = CliServer(endpoint="", pkg_root=base / "pkgroot", outside=base / "outside",
                       config_home=base / "config")
    for directory in (server.pkg_root, server.outside, server.config_home):
        directory.mkdir()
    port = free_port()
    server.endpoint = f"http://127.0.0.1:{port}"
    env = meao_free_environ()
    env.update({"MEAO_DATA_DIR": str(base / "var"), "MEAO_PKG_FILE_ROOT": str(server.pkg_root),
                "MEAO_AUTH": "none", "PYTHONUNBUFFERED": "1", **extra_env})
    log_path = base / "serve.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "meao.cli", "serve", "--port", str(port)], cwd=base,
                                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"meao serve exited; log:\n{log_path.read_text()[-3000:]}")
        return _up(f"{server.pkgm}/app_packages")

    try:
        wait_for(up, 60, 0.2, "meao serve to answer")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliServer]:
    """The zero-config `meao serve` the CLI tests share."""
    with serve(tmp_path_factory.mktemp("cli-server")) as server:
        yield server


@pytest.fixture(scope="session")
def example_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example packages, built once; tests copy the ones they need where they need them."""
    from descriptors.examples.build import build_package

    out = tmp_path_factory.mktemp("example-packages")
    for name in ("mec-minimal", "mec-json-appd", "mec-vm-app"):
        build_package(name, out)
    return out


@pytest.fixture()
def place(example_packages: Path) -> Callable[[str, Path], Path]:
    """Copy example package ``name`` into ``directory`` and return the copy's path."""
    def copy(name: str, directory: Path) -> Path:
        target = directory / f"{name}.zip"
        target.write_bytes((example_packages / f"{name}.zip").read_bytes())
        return target

    return copy


@pytest.fixture()
def meao(cli_server: CliServer) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """Run the CLI against the live server; afterwards remove every instance, package and subscription."""
    env = client_env(cli_server.endpoint, cli_server.config_home)

    def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return run_meao(*args, env={**env, **extra_env})

    yield run
    _clean(cli_server)


def _clean(server: CliServer) -> None:
    """Each test starts from an empty MEAO (appDIds must be unique, so leftovers would break the next one)."""
    with httpx.Client(timeout=30) as http:
        for inst in http.get(f"{server.lcm}/app_instances").json():
            http.delete(f"{server.lcm}/app_instances/{inst['id']}")
        for pkg in http.get(f"{server.pkgm}/app_packages").json():
            def settled(pkg_id: str = pkg["id"]) -> bool:
                state = http.get(f"{server.pkgm}/app_packages/{pkg_id}").json().get("onboardingState")
                return state not in ("UPLOADING", "PROCESSING")

            wait_for(settled, 30, 0.2, f"package {pkg['id']} to leave UPLOADING/PROCESSING")
            http.patch(f"{server.pkgm}/app_packages/{pkg['id']}", json={"operationalState": "DISABLED"})
            http.delete(f"{server.pkgm}/app_packages/{pkg['id']}")
        for api in (server.pkgm, server.lcm):
            for link in http.get(f"{api}/subscriptions").json()["_links"].get("subscriptions", []):
                http.delete(link["href"])
        assert http.get(f"{server.pkgm}/app_packages").json() == [], "a package could not be cleaned up"
