"""`VSSID_LOG_FORMAT=json`: one JSON object a line that a log pipeline can count by, with the
request's id and route and the login's outcome, and still no citizen ID."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Stack
from tests.support.flows import app_complete, app_until_redirect
from vssid_broker.logging_setup import build_handler


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = build_handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


async def test_login_outcomes_are_json_lines_with_request_route_and_duration(
    stack: Stack, json_lines: io.StringIO
) -> None:
    async with httpx.AsyncClient() as app:
        ok = await app_complete(
            app, stack.broker, await app_until_redirect(app, stack.broker, "001085012345")
        )
        refused = await app_complete(
            app, stack.broker, await app_until_redirect(app, stack.broker, "079190123456")
        )
    assert ok.status_code == 200 and refused.status_code >= 400
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    by_outcome = {line["outcome"]: line for line in lines if "outcome" in line}

    succeeded = by_outcome["succeeded"]
    assert succeeded["level"] == "INFO" and succeeded["logger"] == "vssid_broker.login.flow"
    assert succeeded["route"] == "/api/v1/auth/vneid/complete"
    assert succeeded["request_id"] == ok.headers["x-request-id"]
    assert succeeded["channel"] == "app" and succeeded["duration_ms"] > 0
    assert succeeded["timestamp"].endswith("+00:00")

    refusal = by_outcome[refused.json()["code"]]
    assert refusal["request_id"] == refused.json()["request_id"]
    assert refusal["route"] == "/api/v1/auth/vneid/complete"
    assert "duration_ms" in refusal
    text = json_lines.getvalue()
    assert "001085012345" not in text and "079190123456" not in text
