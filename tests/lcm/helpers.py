"""Helpers for lifecycle tests: accepted tasks, waiting for occurrences, reading the database."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.conftest import Stack, wait_for


def accepted_op(client: httpx.Client, resp: httpx.Response) -> str:
    assert resp.status_code == 202, resp.text
    assert resp.content == b""
    return resp.headers["Location"].rsplit("/", 1)[-1]


def wait_op(client: httpx.Client, op_id: str, states: tuple[str, ...] = ("COMPLETED",),
             timeout: float = 150) -> dict[str, Any]:
    final = ("COMPLETED", "FAILED", "FAILED_TEMP")

    def done() -> dict[str, Any] | None:
        op = client.get(f"/app_lcm_op_occs/{op_id}").json()
        return op if op["operationState"] in final else None

    op = wait_for(done, timeout, 0.2, f"operation {op_id} to end")
    assert op["operationState"] in states, op
    return op


def db_rows(stack: Stack, sql: str, **params: Any) -> list[Any]:
    eng = create_engine(stack.env["MEAO_DATABASE_URL"])
    with eng.connect() as conn:
        rows = list(conn.execute(text(sql), params))
    eng.dispose()
    return rows


