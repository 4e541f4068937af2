"""The broker's one outbound HTTP client: every call to VNeID (discovery, JWKS, PAR, the token
and userinfo endpoints) goes through `OutboundClient`, and nothing else in the broker opens a
connection to another server.

It is httpcore's connection pool, called directly. httpx is the layer above that pool; for the
broker's few fixed calls its request and response models, URL parser, cookie jar and
redirect machinery cost CPU and bring nothing: `python3 bench/http_clients.py` measured httpx
at ~750 µs of client CPU per token request and httpcore alone at ~480 µs (issue 30; the
figures in the commit that made this module).

What httpx did and this keeps:
- TLS verified against the same CAs: the context is httpx's own (`create_ssl_context`: certifi's
  bundle, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set);
- the proxy the environment names (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, less `NO_PROXY`),
  read once at start as httpx read it;
- one timeout for connecting, writing, reading and waiting for a pooled connection;
- idle connections kept `KEEPALIVE_SECONDS`, at most 100 connections (httpx's limits);
- no redirect followed (httpcore follows none).

Every way a call can fail to get an answer (no connection, TLS refused, a timeout, a broken or
malformed HTTP exchange, the proxy refusing) is one exception, `OutboundError`, naming the
failure; what it means for a login is the caller's to say.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

KEEPALIVE_SECONDS = 2.0
"""How long an idle connection to VNeID is kept for reuse: well under the servers' own idle
timeouts (uvicorn's 5 s, the simulator's). At 5 s (httpx's default) a connection reused just as
the server closed it failed the code exchange with a ReadError (`vneid_unavailable`), twice in
about 2,100 logins of bench/rotation_bench.py on a loaded machine."""

MAX_CONNECTIONS = 100
MAX_KEEPALIVE_CONNECTIONS = 20
USER_AGENT = "vssid-broker"

FAILURES = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
)
"""httpcore's exceptions for a call that got no answer; TLS failures arrive as ConnectError."""


class OutboundError(Exception):
    """The call got no HTTP answer; `kind` names how (`ConnectError`, `ReadTimeout`, …)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class AnswerTooLarge(Exception):
    """The answer's body passed the limit the caller set; the rest was not read."""


@dataclass(frozen=True)
class OutboundResponse:
    status_code: int
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


class OutboundClient:
    """One per process; safe to share between concurrent requests."""

    def __init__(self, *, timeout_seconds: float, ssl_context: ssl.SSLContext | None = None):
        self._ssl_context = ssl_context or httpx.create_ssl_context()
        self._extensions = {
            "timeout": dict.fromkeys(("connect", "read", "write", "pool"), timeout_seconds)
        }
        self._direct = self._pool(None)
        self._proxies = urllib.request.getproxies()
        self._pools: dict[tuple[str, str], httpcore.AsyncConnectionPool] = {}
        """The pool for each (scheme, host) called so far: direct, or through its proxy."""

    def _pool(self, proxy: str | None) -> httpcore.AsyncConnectionPool:
        options: dict[str, Any] = {
            "ssl_context": self._ssl_context,
            "max_connections": MAX_CONNECTIONS,
            "max_keepalive_connections": MAX_KEEPALIVE_CONNECTIONS,
            "keepalive_expiry": KEEPALIVE_SECONDS,
        }
        if proxy is None:
            return httpcore.AsyncConnectionPool(**options)
        parts = urlsplit(proxy)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"unsupported proxy scheme {parts.scheme!r} (http or https)")
        auth = (parts.username or "", parts.password or "") if parts.username else None
        origin = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return httpcore.AsyncHTTPProxy(proxy_url=origin, proxy_auth=auth, **options)

    def _pool_for(self, url: str) -> httpcore.AsyncConnectionPool:
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        pool = self._pools.get(key)
        if pool is None:
            proxy = self._proxies.get(parts.scheme) or self._proxies.get("all")
            if proxy and urllib.request.proxy_bypass(key[1]):
                proxy = None
            pool = self._direct if not proxy else self._pool(proxy)
            self._pools[key] = pool
        return pool

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: str | bytes | None = None,
        max_bytes: int | None = None,
    ) -> OutboundResponse:
        """Status and body; with `max_bytes`, the body read no further than that
        (`AnswerTooLarge` past it)."""
        sent = [(b"User-Agent", USER_AGENT.encode())]
        sent += [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
        ]
        body = content.encode() if isinstance(content, str) else content
        pool = self._pool_for(url)
        try:
            async with pool.stream(
                method, url, headers=sent, content=body, extensions=self._extensions
            ) as response:
                received = bytearray()
                async for chunk in response.aiter_stream():
                    received += chunk
                    if max_bytes is not None and len(received) > max_bytes:
                        raise AnswerTooLarge(f"answer over {max_bytes} bytes")
        except FAILURES as error:
            raise OutboundError(type(error).__name__) from error
        return OutboundResponse(response.status, bytes(received))

    async def aclose(self) -> None:
        for pool in {id(pool): pool for pool in [self._direct, *self._pools.values()]}.values():
            await pool.aclose()
