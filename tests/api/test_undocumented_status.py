"""UndocumentedStatusGuard: with response validation on, a status the operation's OpenAPI file does not
document becomes a 500 ProblemDetails naming it; a documented one passes unchanged."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from meao.api.validation import UndocumentedStatusGuard, document_statuses, documented

SPEC = {"paths": {"/things/{id}": {"get": {"operationId": "tests.get_thing",
                                            "responses": {"200": {}, "404": {}, "5XX": {}}}}}}


def _answer(status: int) -> list[dict[str, Any]]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["extensions"]["connexion_routing"] = {"api_base_path": "/t/v1", "operation_id": "tests.get_thing"}
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(UndocumentedStatusGuard(app)({"type": "http", "extensions": {}}, None, send))
    return sent


def test_an_undocumented_status_becomes_a_500_naming_it_and_a_documented_one_passes() -> None:
    document_statuses(SPEC, "/t/v1/")
    assert documented("/t/v1", "tests.get_thing", 404) and documented("/t/v1", "tests.get_thing", 503)
    assert documented("/t/v1", "tests.get_thing", 409) is False
    assert documented("/t/v1", "tests.other", 409) is None  # not recorded: not judged

    assert [m.get("status") for m in _answer(404)] == [404, None]
    start, body = _answer(409)
    assert start["status"] == 500
    problem = json.loads(body["body"])
    assert problem["status"] == 500 and problem["title"] == "Undocumented status"
    assert "tests.get_thing answered 409" in problem["detail"]
