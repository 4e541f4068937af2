"""An outbound transport for the simulated VNeID that sends over real HTTP and keeps a copy,
so a test can read (and replay) what VNeID sent, e.g. back-channel logout tokens."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx


class RecordingTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = (await request.aread()).decode()
        self.sent.append((str(request.url), {k: v[0] for k, v in parse_qs(body).items()}))
        # A fresh inner transport per request: the simulator closes its client after each use.
        async with httpx.AsyncHTTPTransport() as inner:
            response = await inner.handle_async_request(request)
            content = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, content=content)

    async def aclose(self) -> None:
        return None
