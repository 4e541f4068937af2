"""OpenTelemetry (the `[otel]` extra): each request becomes a span, and `serve` really sends
spans over OTLP/HTTP to the collector named by the standard `OTEL_*` variables."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.http import TLS, AsyncClient
from tests.support.live_server import free_port
from tests.test_cli import cli_env, run_cli, running
from vssid_broker.app import create_app
from vssid_broker.config import Settings


async def test_a_request_becomes_a_span_in_the_exporter(broker_settings: Settings) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = broker_settings.model_copy(update={"opentelemetry": True})
    app = create_app(settings, tracer_provider=provider)
    async with AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        assert (await client.get("/healthz")).status_code == 200
    spans = exporter.get_finished_spans()
    assert any(span.name == "GET /healthz" for span in spans), [s.name for s in spans]


async def test_no_spans_when_tracing_is_off(broker_settings: Settings) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(broker_settings, tracer_provider=provider)
    async with AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        assert (await client.get("/healthz")).status_code == 200
    assert exporter.get_finished_spans() == ()


@contextmanager
def otlp_collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """A stand-in OTLP/HTTP collector: decodes what arrives at /v1/traces."""
    received: list[ExportTraceServiceRequest] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces":
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                received.append(request)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()


def test_serve_exports_spans_over_otlp(tmp_path: Path) -> None:
    with otlp_collector() as (endpoint, received):
        env = cli_env(
            tmp_path,
            VSSID_OPENTELEMETRY="true",
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_SERVICE_NAME="vssid-broker",
            OTEL_BSP_SCHEDULE_DELAY="100",  # milliseconds between batches
        )
        assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with running(
            "serve", "--port", str(port), env=env, cwd=tmp_path, ready_url=f"{url}/healthz"
        ):
            httpx.get(f"{url}/.well-known/jwks.json", verify=TLS)
            deadline = time.monotonic() + 15
            names: set[str] = set()
            while time.monotonic() < deadline and "GET /.well-known/jwks.json" not in names:
                time.sleep(0.2)
                names = {
                    span.name
                    for request in received
                    for resource in request.resource_spans
                    for scope in resource.scope_spans
                    for span in scope.spans
                }
    assert "GET /.well-known/jwks.json" in names, names
