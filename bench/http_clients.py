"""What one outbound call to VNeID's token endpoint costs the broker in client CPU, by HTTP client.

    python3 bench/http_clients.py [--calls 3000] [--out bench/results/http-clients.json]

A login makes one such call (the code exchange, `ProviderClient.exchange_code`): a form POST
with client authentication, a JSON answer of about a kilobyte. A stand-in token endpoint runs in
a process of its own (uvicorn on loopback); this process makes the calls one after another with
each client, reusing its connection, and counts only its own CPU. httpx is what the broker uses;
the others are measured when installed (`pip install aiohttp`), for comparison only.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

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


async def with_httpx(url: str, calls: int) -> float:
    import httpx

    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:

        async def call() -> None:
            response = await client.post(url, data=FORM, auth=("vssid-broker", "secret"))
            response.json()

        return await timed(call, calls)


async def with_aiohttp(url: str, calls: int) -> float:
    import aiohttp  # type: ignore[import-not-found,unused-ignore]  # for comparison only

    # The same Basic credentials httpx sends, as a header (aiohttp deprecates its `auth=`).
    headers = {"Authorization": "Basic " + base64.b64encode(b"vssid-broker:secret").decode()}
    async with aiohttp.ClientSession() as client:

        async def call() -> None:
            async with client.post(url, data=FORM, headers=headers) as response:
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
    "httpx": with_httpx,
    "aiohttp": with_aiohttp,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
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

    rows = []
    try:
        for name, client in CLIENTS.items():
            try:
                cpu_us = uvloop.run(client(url, opts.calls))
            except ImportError:
                print(f"{name:<8} not installed", file=sys.stderr)
                continue
            rows.append({"client": name, "cpu_us_per_call": round(cpu_us, 1)})
            print(f"{name:<8} {cpu_us:7.1f} µs of client CPU per token request")
    finally:
        server.terminate()
    if opts.out:
        out = {"calls": opts.calls, "clients": rows, "command": " ".join(sys.argv)}
        opts.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
