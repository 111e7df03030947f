"""Fixtures of the chaos suite: a meao of separate processes on a private Redis and PostgreSQL, the
OpenStack test bed, and after every case the check that OpenStack holds exactly what the database records."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.api.helpers import onboard
from tests.faults.audit import audit, duplicate_images
from tests.faults.onboarding_stack import meao_under, package_server  # noqa: F401 — the onboarding cases' fixtures
from tests.faults.servers import PostgresServer, RedisServer
from tests.faults.stack import ChaosStack
from tests.lcm.conftest import hosts_doc, networks, os_conn  # noqa: F401 — fixtures shared with tests/lcm


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory, clouds_yaml: Path,
          networks: dict[str, str]) -> Iterator[ChaosStack]:  # noqa: F811
    """An API and one worker ("w1") on a private Redis (no persistence) and a private PostgreSQL."""
    base = tmp_path_factory.mktemp("chaos")
    redis = RedisServer(base)
    redis.start()
    pg = PostgresServer()
    pg.init()
    hosts_file = base / "hosts.yaml"
    hosts_file.write_text(yaml.safe_dump(hosts_doc(networks)))
    (base / "pkgsrc").mkdir()
    stack = ChaosStack(base, {"MEAO_DATABASE_URL": pg.url, "MEAO_BROKER_URL": redis.url,
                              "OS_CLIENT_CONFIG_FILE": str(clouds_yaml), "MEAO_MEC_HOSTS_FILE": str(hosts_file),
                              "MEAO_TEST_FAULT_DIR": str(base / "faults"), "MEAO_PKG_FILE_ROOT": str(base / "pkgsrc")})
    stack.redis, stack.pg = redis, pg  # type: ignore[attr-defined]
    stack.started_at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)  # type: ignore[attr-defined]
    try:
        stack.start_api()
        stack.start_worker("w1")
        yield stack
    finally:
        stack.stop()
        redis.stop()
        pg.destroy()


@pytest.fixture(scope="module")
def chaos_pkg(chaos: ChaosStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from descriptors.examples.build import build_package

    return onboard(chaos, build_package("mec-vm-app", tmp_path_factory.mktemp("chaos-vm")))


def small(tree: Path) -> None:
    """1 vCPU and 512 MiB instead of 2 and 2048: eight fit on one test-bed host, for bursts."""
    appd = tree / "Definitions" / "mec_vm_app.yaml"
    appd.write_text(appd.read_text().replace("num_virtual_cpu: 2", "num_virtual_cpu: 1")
                    .replace("virtual_mem_size: 2048 MiB", "virtual_mem_size: 512 MiB"))


@pytest.fixture(scope="module")
def small_pkg(chaos: ChaosStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The VM app, smaller, under its own appDId (same image as ``chaos_pkg``)."""
    from descriptors.examples.build import build_package

    return onboard(chaos, build_package("mec-vm-app", tmp_path_factory.mktemp("chaos-small"), mutate=small,
                                        appd_id=f"chaos-small-{uuid.uuid4().hex[:8]}"))


@pytest.fixture()
def healthy(chaos: ChaosStack, os_conn) -> Iterator[ChaosStack]:  # noqa: F811
    """Each case starts with no fault armed, the API and worker w1 up; it ends with the VIM audit."""
    chaos.faults.clear()
    if chaos.api is None or chaos.api.poll() is not None:
        chaos.start_api()
    if "w1" not in chaos.workers or chaos.workers["w1"].poll() is not None:
        chaos.start_worker("w1")
    yield chaos
    chaos.faults.clear()
    if chaos.api is None or chaos.api.poll() is not None:  # a case that failed midway: the next needs it
        chaos.start_api()
    problems = audit(chaos.env["MEAO_DATABASE_URL"], os_conn, chaos.started_at)  # type: ignore[attr-defined]
    assert not problems, "OpenStack differs from the database:\n" + "\n".join(problems)
    assert not duplicate_images(os_conn), duplicate_images(os_conn)
