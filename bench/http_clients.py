"""What one outbound call to VNeID's token endpoint costs the broker in client CPU, by HTTP client.

    python3 bench/http_clients.py [--calls 3000] [--out bench/results/http-clients.json]

A login makes one such call (the code exchange, `ProviderClient.exchange_code`): a form POST
with client authentication, a JSON answer of about a kilobyte. A stand-in token endpoint runs in
a process of its own (uvicorn on loopback); this process makes the calls one after another with
each client, reusing its connection, and counts only its own CPU. `broker` is the broker's own
client (`federation/outbound.py`: httpcore's pool); httpx as the broker built it before, httpx
tuned and httpcore alone are what it was chosen from; aiohttp is measured when installed
(`.venv/bin/pip install aiohttp`), for comparison only.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

TOKEN_RESPONSE = {
    "access_token": "a" * 43,
    "token_type": "Bearer",
    "expires_in": 300,
    "id_token": "e" * 36 + "." + "p" * 600 + "." + "s" * 86,
    "scope": "openid profile",
}
FORM = {
    "grant_type": "authorization_code",
    "code": "c" * 43,
    "redirect_uri": "http://127.0.0.1:8000/auth/vneid/callback",
    "code_verifier": "v" * 64,
}


def serve(port: int) -> None:
    import uvicorn

    body = json.dumps(TOKEN_RESPONSE).encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


BASIC = "Basic " + base64.b64encode(b"vssid-broker:secret").decode()
HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Accept": "application/json",
    "Authorization": BASIC,
}
"""What `ProviderClient` sends: it encodes the form and the client authentication itself
(authlib's `ClientAuth`), so every client below gets the same headers and body and only the
client's own work differs."""
BODY = urlencode(FORM)
TIMEOUT_SECONDS = 5.0
KEEPALIVE_SECONDS = 2.0


async def with_httpx_as_before(url: str, calls: int) -> float:
    """httpx as `ProviderClient` built it before issue 30: the defaults (environment read for
    proxies and CAs, the cookie jar, its URL model) with the broker's timeout and keep-alive."""
    import httpx

    async with httpx.AsyncClient(
        timeout=httpx.Timeout(TIMEOUT_SECONDS),
        follow_redirects=False,
        limits=httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS),
    ) as client:

        async def call() -> None:
            response = await client.post(url, headers=HEADERS, content=BODY)
            response.json()

        return await timed(call, calls)


async def with_httpx_tuned(url: str, calls: int) -> float:
    """httpx with what can be turned off turned off: no environment, a plain transport of its
    own (HTTP/1.1 only), the request built once per call without client defaults to merge."""
    import httpx

    transport = httpx.AsyncHTTPTransport(
        limits=httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS), trust_env=False
    )
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(TIMEOUT_SECONDS),
        follow_redirects=False,
        trust_env=False,
        transport=transport,
    ) as client:

        async def call() -> None:
            request = httpx.Request("POST", url, headers=HEADERS, content=BODY)
            response = await client.send(request)
            response.json()

        return await timed(call, calls)


async def with_httpcore(url: str, calls: int) -> float:
    """httpcore's connection pool, the layer under httpx, called directly."""
    import httpcore

    timeouts = dict.fromkeys(("connect", "read", "write", "pool"), TIMEOUT_SECONDS)
    headers = [(name.encode(), value.encode()) for name, value in HEADERS.items()]
    body = BODY.encode()
    async with httpcore.AsyncConnectionPool(keepalive_expiry=KEEPALIVE_SECONDS) as pool:

        async def call() -> None:
            response = await pool.request(
                "POST", url, headers=headers, content=body, extensions={"timeout": timeouts}
            )
            json.loads(response.content)

        return await timed(call, calls)


async def with_broker(url: str, calls: int) -> float:
    """The broker's own outbound client (`vssid_broker.federation.outbound`), as it is built."""
    from vssid_broker.federation import outbound

    client = outbound.OutboundClient(timeout_seconds=TIMEOUT_SECONDS)
    try:

        async def call() -> None:
            response = await client.request("POST", url, headers=HEADERS, content=BODY)
            response.json()

        return await timed(call, calls)
    finally:
        await client.aclose()


async def with_aiohttp(url: str, calls: int) -> float:
    import aiohttp  # type: ignore[import-not-found,unused-ignore]  # for comparison only

    timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    connector = aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as client:

        async def call() -> None:
            async with client.post(url, data=BODY, headers=HEADERS) as response:
                await response.json()

        return await timed(call, calls)


async def timed(call: Callable[[], Awaitable[None]], calls: int) -> float:
    for _ in range(100):  # connection up, caches warm
        await call()
    started = time.process_time()
    for _ in range(calls):
        await call()
    return (time.process_time() - started) / calls * 1e6


CLIENTS: dict[str, Callable[[str, int], Coroutine[Any, Any, float]]] = {
    "httpx-before": with_httpx_as_before,
    "httpx-tuned": with_httpx_tuned,
    "httpcore": with_httpcore,
    "broker": with_broker,
    "aiohttp": with_aiohttp,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every client")
    parser.add_argument("--out", type=Path, default=None)
    opts = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(port,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}/token"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    import uvloop

    # Rounds interleave the clients, so a neighbour's burst on a shared machine lands on all of
    # them alike; the median of the rounds is reported.
    figures: dict[str, list[float]] = {}
    load_at_start = os.getloadavg()
    try:
        for _ in range(opts.rounds):
            for name, client in CLIENTS.items():
                try:
                    figures.setdefault(name, []).append(uvloop.run(client(url, opts.calls)))
                except ImportError:
                    figures.pop(name, None)
    finally:
        server.terminate()
    load_at_end = os.getloadavg()
    rows = []
    for name in CLIENTS:
        if name not in figures:
            print(f"{name:<13} not available", file=sys.stderr)
            continue
        cpu_us = statistics.median(figures[name])
        rounds = " ".join(f"{figure:.0f}" for figure in figures[name])
        rows.append({"client": name, "cpu_us_per_call": round(cpu_us, 1), "rounds": rounds})
        print(f"{name:<13} {cpu_us:7.1f} µs of client CPU per token request (rounds: {rounds})")
    print(f"load average {load_at_start[0]:.2f} at start, {load_at_end[0]:.2f} at end")
    if opts.out:
        out = {
            "calls": opts.calls,
            "rounds": opts.rounds,
            "clients": rows,
            "loadavg_at_start": load_at_start,
            "loadavg_at_end": load_at_end,
            "command": " ".join(sys.argv),
        }
        opts.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    from run import reexec_in_venv  # the harness's: runs us under the project's .venv

    reexec_in_venv()
    main()
