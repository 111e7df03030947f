"""The list commands follow the Link headers: a list longer than a page comes out whole, in order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine

from tests.api.helpers import LIST_ROWS, seed_rows
from tests.cli.conftest import CliServer, serve
from tests.cli.helpers import client_env, ok_json, run_meao

N = 5  # three pages of 2


@pytest.fixture(scope="module")
def paging_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliServer]:
    """A zero-config `meao serve` paging by 2, with N rows in each list."""
    base = tmp_path_factory.mktemp("cli-paging")
    with serve(base, MEAO_PAGE_SIZE="2") as server:
        engine = create_engine(f"sqlite:///{base / 'var' / 'meao.db'}")
        try:
            for name in ("app_instances", "app_packages", "app_lcm_op_occs"):
                seed_rows(engine, name, [LIST_ROWS[name][1](n) for n in range(N)])
            subs = [LIST_ROWS[name][1](n + 10 * i) for i, name in enumerate(("pkgm_subscriptions", "lcm_subscriptions"))
                    for n in range(N)]
            seed_rows(engine, "pkgm_subscriptions", subs)  # one table for both APIs
        finally:
            engine.dispose()
        yield server


@pytest.mark.parametrize(("command", "prefix"), [(("app", "list"), "inst"), (("package", "list"), "pkg"),
                                                  (("op", "list"), "op")])
def test_a_list_command_prints_every_page(paging_server: CliServer, command: tuple[str, ...], prefix: str) -> None:
    env = client_env(paging_server.endpoint, paging_server.config_home)
    rows = ok_json(run_meao(*command, "-f", "json", env=env))
    assert [r["id"] for r in rows] == [f"{prefix}-{n:06.1f}" for n in range(N)]


def test_subscription_list_prints_every_page_of_both_apis(paging_server: CliServer) -> None:
    env = client_env(paging_server.endpoint, paging_server.config_home)
    rows = ok_json(run_meao("subscription", "list", "-c", "id", "-c", "api", "-f", "json", env=env))
    assert [(r["api"], r["id"]) for r in rows] == (
        [("pkgm", f"sub-{n:06.1f}") for n in range(N)] + [("lcm", f"sub-{n + 10:06.1f}") for n in range(N)])
