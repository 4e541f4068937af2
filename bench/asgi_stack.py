"""What the broker's ASGI stack costs per request before any database work: middleware,
routing, the error handlers, the response. In process, no network, no server.

    python3 bench/asgi_stack.py [--out bench/results/asgi-stack.json]

Each path is called a few thousand times through the whole application (`create_app`, an
embedded SQLite database none of these paths touches) and the CPU time per call is reported:
the floor under every endpoint, and how much routing adds for paths matched late or not at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PATHS = [
    ("GET", "/healthz", "matched first (declared on the app)"),
    ("GET", "/api/v1/me", "an app API path, no token: 401 problem+json"),
    ("GET", "/.well-known/jwks.json", "a public document"),
    ("GET", "/nowhere", "matched by nothing: every route is tried, 404 problem+json"),
    ("POST", "/api/v1/auth/token", "the refresh grant, an empty request: 400 problem+json"),
]


async def call(app: Any, method: str, path: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    status: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


async def measure(calls: int) -> list[dict[str, Any]]:
    from vssid_broker.app import create_app
    from vssid_broker.config import Settings

    app = create_app(Settings())
    rows = []
    for method, path, what in PATHS:
        status = await call(app, method, path)
        for _ in range(200):  # warm: caches, first-call imports
            await call(app, method, path)
        started = time.process_time()
        for _ in range(calls):
            await call(app, method, path)
        cpu_us = (time.process_time() - started) / calls * 1e6
        rows.append({"path": path, "status": status, "what": what, "cpu_us": round(cpu_us, 1)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=None)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["VSSID_DATABASE_URL"] = f"sqlite+aiosqlite:///{scratch}/bench.sqlite3"
        os.environ.setdefault("VSSID_KEY_ENCRYPTION_KEY_FILE", f"{scratch}/kek")
        os.environ.setdefault("VSSID_BLIND_INDEX_KEY_FILE", f"{scratch}/index")
        broker = Path(sys.executable).parent / "vssid-broker"
        subprocess.run([str(broker), "migrate"], check=True, capture_output=True)  # noqa: S603
        rows = asyncio.run(measure(opts.calls))
    for row in rows:
        print(f"{row['path']:<26} {row['status']}  {row['cpu_us']:>7} µs CPU  {row['what']}")
    if opts.out:
        opts.out.write_text(json.dumps({"calls": opts.calls, "paths": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
