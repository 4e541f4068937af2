"""`VSSID_LOG_FORMAT=json`: one JSON object a line that a log pipeline can count by, with the
request's id and route and the login's outcome, and still no citizen ID."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Stack
from tests.support.flows import app_complete, app_until_redirect
from tests.support.http import AsyncClient
from vssid_broker.app import create_app
from vssid_broker.config import Settings
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
    async with AsyncClient() as app:
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


async def test_the_access_log_names_route_status_refusal_code_and_never_the_query(
    broker_settings: Settings, json_lines: io.StringIO
) -> None:
    app = create_app(broker_settings.model_copy(update={"access_log": True}))
    async with AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        refused = await client.get("/api/v1/me")
        await client.get("/healthz")
        await client.get("/auth/vneid/callback?code=SECRET-CODE&state=SECRET-STATE")
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "vssid_broker.access"]
    by_route = {line["route"]: line for line in access}

    me = by_route["/api/v1/me"]
    assert me["status"] == 401 and me["outcome"] == refused.json()["code"]
    assert me["request_id"] == refused.headers["x-request-id"]
    assert me["method"] == "GET" and me["duration_ms"] >= 0
    assert by_route["/healthz"]["outcome"] == "ok"
    assert "/auth/vneid/callback" in by_route
    # (The test's own httpx client logs its URLs; the broker's lines must not.)
    broker_lines = [line for line in lines if line["logger"].startswith("vssid_broker")]
    assert "SECRET" not in json.dumps(broker_lines)


async def test_no_access_log_unless_asked(
    broker_settings: Settings, json_lines: io.StringIO
) -> None:
    app = create_app(broker_settings)
    async with AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        await client.get("/healthz")
    assert "vssid_broker.access" not in json_lines.getvalue()


async def test_with_tracing_on_each_request_line_carries_its_trace_and_span(
    broker_settings: Settings, json_lines: io.StringIO
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = broker_settings.model_copy(update={"access_log": True, "opentelemetry": True})
    app = create_app(settings, tracer_provider=provider)
    access = await the_access_line(app, "/api/v1/me", json_lines)
    spans = {
        (format(s.context.trace_id, "032x"), format(s.context.span_id, "016x")): s.name
        for s in exporter.get_finished_spans()
    }
    # The line leads to the request's own span in the trace back end.
    assert (access["trace_id"], access["span_id"]) in spans
    assert spans[(access["trace_id"], access["span_id"])] == "GET /api/v1/me"


async def test_without_a_span_lines_carry_no_trace_fields(
    broker_settings: Settings, json_lines: io.StringIO
) -> None:
    app = create_app(broker_settings.model_copy(update={"access_log": True}))
    access = await the_access_line(app, "/healthz", json_lines)
    assert "trace_id" not in access and "span_id" not in access


async def the_access_line(app: FastAPI, path: str, json_lines: io.StringIO) -> dict[str, Any]:
    """GET `path` once; its one access-log line."""
    async with AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        await client.get(path)
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    (access,) = [line for line in lines if line["logger"] == "vssid_broker.access"]
    return dict(access)


def test_a_traceback_in_a_json_line_is_redacted(json_lines: io.StringIO) -> None:
    """An exception's text carries what it was given: in a JSON line's `exc_info` as in the
    text format, a citizen ID, a birth date and a bearer token are masked."""
    try:
        raise ValueError("no account for 001085012345 born 19850312, Bearer abc.def-ghi")
    except ValueError:
        logging.getLogger("vssid_broker.test").exception("lookup failed")
    [line] = [json.loads(text) for text in json_lines.getvalue().splitlines()]
    assert "ValueError" in line["exc_info"]
    assert "001******345" in line["exc_info"]
    for value in ("001085012345", "19850312", "abc.def-ghi"):
        assert value not in line["exc_info"]
