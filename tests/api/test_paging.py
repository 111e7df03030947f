"""Paged lists (meao.api.paging): every item once and in order, stable under inserts, with filters, a 400
for a marker meao did not give, and no Link on the last page; on SQLite and PostgreSQL.

The stack pages by 3 (MEAO_PAGE_SIZE). Each test empties the tables it lists and writes its rows straight
into the database with chosen timestamps, so the order it expects is known and nothing waits on a job.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from tests.api.helpers import LIST_ROWS, T0, instance_row, seed_rows
from tests.conftest import REDIS, Stack, fresh_database, launch_stack, require_service

PAGE = 3
PAGING_REDIS_DB = {"sqlite": 0, "postgresql": 1}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def paged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Engine]]:
    """A live meao paging by 3, and an engine on its database."""
    require_service("Redis", REDIS)
    base = tmp_path_factory.mktemp(f"paging-{request.param}")
    with fresh_database(request.param, base) as db_url:
        stack = launch_stack(base, db_url, PAGING_REDIS_DB[request.param], {"MEAO_PAGE_SIZE": str(PAGE)})
        engine = create_engine(db_url)
        try:
            yield stack, engine
        finally:
            engine.dispose()
            stack.stop()


URLS = {"app_instances": "/app_lcm/v1/app_instances", "app_packages": "/app_pkgm/v1/app_packages",
        "app_lcm_op_occs": "/app_lcm/v1/app_lcm_op_occs", "pkgm_subscriptions": "/app_pkgm/v1/subscriptions",
        "lcm_subscriptions": "/app_lcm/v1/subscriptions"}


def _ids(resp: httpx.Response) -> list[str]:
    body = resp.json()
    if isinstance(body, dict):  # a SubscriptionLinkList
        return [link["href"].rsplit("/", 1)[1] for link in body["_links"]["subscriptions"]]
    return [item["id"] for item in body]


def _walk(stack: Stack, url: str, params: dict[str, str] | None = None,
          ids: Callable[[httpx.Response], list[str]] = _ids) -> list[list[str]]:
    """The ids of every page, following Link rel="next" from ``url`` (a path, or a Link's URL) to the last page."""
    pages = []
    with httpx.Client(base_url=stack.base, timeout=30) as c:
        resp = c.get(url, params=params)
        while True:
            assert resp.status_code == 200, resp.text
            pages.append(ids(resp))
            nxt = resp.links.get("next", {}).get("url")
            if nxt is None:
                return pages
            assert nxt.startswith(stack.base) and httpx.URL(nxt).path == httpx.URL(url).path
            resp = c.get(nxt)


@pytest.mark.parametrize("list_name", list(LIST_ROWS))
def test_walking_the_links_returns_every_item_once_in_order(paged: tuple[Stack, Engine], list_name: str) -> None:
    stack, engine = paged
    make = LIST_ROWS[list_name][1]
    # 5.0 twice (ids differ): equal timestamps are ordered by id, neither lost nor repeated
    rows = [make(n) for n in (3, 1, 6, 2, 4, 7, 5)] + [{**make(5), "id": make(5)["id"] + "b"}]
    seed_rows(engine, list_name, rows)
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r.get("created_at") or r.get("start_time"), r["id"]))]
    pages = _walk(stack, URLS[list_name])
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [i for p in pages for i in p] == expected


def test_inserts_between_pages_neither_repeat_nor_skip_an_item(paged: tuple[Stack, Engine]) -> None:
    stack, engine = paged
    seed_rows(engine, "app_instances", [instance_row(n) for n in range(7)])
    with httpx.Client(base_url=stack.base, timeout=30) as c:
        first = c.get(URLS["app_instances"])
        assert _ids(first) == ["inst-0000.0", "inst-0001.0", "inst-0002.0"]
        # before the first page's last item (an offset would repeat inst-0002.0), inside the rest, at the end
        seed_rows(engine, "app_instances", [instance_row(n) for n in (0.5, 4.5, 9)], empty_first=False)
        rest = _walk(stack, first.links["next"]["url"])
    seen = _ids(first) + [i for p in rest for i in p]
    assert len(seen) == len(set(seen))
    assert [i for i in seen if not i.endswith(".5") and i != "inst-0009.0"] == [f"inst-{n:06.1f}" for n in range(7)]
    assert "inst-0004.5" in seen and "inst-0009.0" in seen  # after the marker: found on a later page


def test_a_filter_pages_over_the_rows_it_matches(paged: tuple[Stack, Engine]) -> None:
    stack, engine = paged
    hits = {0, 5, 6, 11, 12}  # sparse: a page needs more than one batch of rows
    seed_rows(engine, "app_instances", [instance_row(n, "hit" if n in hits else "miss") for n in range(14)])
    pages = _walk(stack, URLS["app_instances"], {"filter": "(eq,appName,hit)", "fields": "appName"})
    assert pages == [["inst-0000.0", "inst-0005.0", "inst-0006.0"], ["inst-0011.0", "inst-0012.0"]]
    with httpx.Client(base_url=stack.base, timeout=30) as c:
        first = c.get(URLS["app_instances"], params={"filter": "(eq,appName,hit)", "fields": "appName"})
        nxt = httpx.URL(first.links["next"]["url"])
        assert nxt.params["filter"] == "(eq,appName,hit)" and nxt.params["fields"] == "appName"
        assert all(set(item) >= {"id", "appName"} for item in c.get(nxt).json())


def test_no_link_on_the_last_page(paged: tuple[Stack, Engine]) -> None:
    stack, engine = paged
    with httpx.Client(base_url=stack.base, timeout=30) as c:
        seed_rows(engine, "app_instances", [instance_row(n) for n in range(PAGE)])  # exactly one full page
        full = c.get(URLS["app_instances"])
        assert len(full.json()) == PAGE and "link" not in full.headers
        seed_rows(engine, "app_instances", [])
        empty = c.get(URLS["app_instances"])
        assert empty.json() == [] and "link" not in empty.headers


def _t(n: float) -> Any:
    return T0 + timedelta(seconds=n)


def _forged(obj: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def test_a_marker_meao_did_not_give_for_the_list_is_a_400_problem(paged: tuple[Stack, Engine]) -> None:
    stack, engine = paged
    seed_rows(engine, "app_instances", [instance_row(n) for n in range(PAGE + 1)])
    with httpx.Client(base_url=stack.base, timeout=30) as c:
        marker = httpx.URL(c.get(URLS["app_instances"]).links["next"]["url"]).params["nextpage_opaque_marker"]
        url = URLS["app_instances"]
        for bad, where in ((marker, URLS["app_packages"]),  # another list's
                           ("not*base64", url), (_forged({"a": 1}), url),
                           (_forged([99, url, ["x", "y"]]), url),  # another version's
                           (_forged([1, url, [1, 2]]), url), (_forged([1, url, ["yesterday", "x"]]), url),
                           (_forged([1, url, ["2026-12-01T00:00:00+00:00"]]), url)):
            resp = c.get(where, params={"nextpage_opaque_marker": bad})
            assert resp.status_code == 400, (bad, resp.text)
            assert resp.headers["content-type"].startswith("application/problem+json")
            problem = resp.json()
            assert problem["status"] == 400 and problem["title"] == "Invalid paging marker"
            assert "without it" in problem["detail"] and "Link" in problem["detail"], problem


def test_failed_jobs_page_in_the_order_they_failed(paged: tuple[Stack, Engine]) -> None:
    stack, engine = paged
    ops = [{**LIST_ROWS["app_lcm_op_occs"][1](n), "operation_state": "FAILED_TEMP", "state_entered_time": _t(n)}
           for n in (4, 0, 3, 1, 2)]
    seed_rows(engine, "app_lcm_op_occs", ops)
    pages = _walk(stack, "/ops/v1/jobs", {"state": "FAILED"}, ids=lambda r: [j["appLcmOpOccId"] for j in r.json()])
    assert pages == [["op-0000.0", "op-0001.0", "op-0002.0"], ["op-0003.0", "op-0004.0"]]
    with httpx.Client(base_url=stack.base, timeout=30) as c:
        resp = c.get("/ops/v1/jobs", params={"nextpage_opaque_marker": _forged([1, "/ops/v1/jobs", ["x", 1, 2]])})
        assert resp.status_code == 400 and resp.json()["title"] == "Invalid paging marker", resp.text
