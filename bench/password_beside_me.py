"""Password attempts beside `/api/v1/me`: does a burst of password sign-ins slow the others?

Starts `vssid-broker demo` (broker and simulated VNeID, embedded SQLite in a temporary folder,
one broker process), signs one person in through VNeID for an access token, then measures:

1. `/api/v1/me` and `/healthz` alone;
2. the same beside a stream of password attempts (wrong passwords at identifiers that name no
   one, each a different one, so each costs a full argon2id check and none is locked out).

Rate limits are raised for the run: it measures CPU, not the limits. `--source DIR` runs the
broker from another source tree (e.g. an export of an earlier commit) for a before/after pair.

    python3 bench/password_beside_me.py --duration 10 --out bench/results/password-beside-me.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
APP_REDIRECT_URI = "vn.gov.baohiemxahoi.vssid:/oauth/vneid"
CITIZEN = "001085012345"
RUN_CLI = "from vssid_broker.cli import main; main()"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values) or [0.0]

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {"count": len(values), "p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99)}


async def access_token(broker: str) -> str:
    from vssid_broker.vneid_sim.driver import sign_in_at_vneid

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    async with httpx.AsyncClient(timeout=30) as app:
        start = await app.post(
            f"{broker}/api/v1/auth/vneid/start",
            json={
                "redirect_uri": APP_REDIRECT_URI,
                "code_challenge": challenge.rstrip(b"=").decode(),
                "code_challenge_method": "S256",
            },
        )
        location = await sign_in_at_vneid(app, start.json()["authorization_url"], CITIZEN)
        params = dict(httpx.URL(location).params)
        done = await app.post(
            f"{broker}/api/v1/auth/vneid/complete", json={**params, "code_verifier": verifier}
        )
        done.raise_for_status()
        return str(done.json()["access_token"])


async def loop(
    client: httpx.AsyncClient, request: Any, until: float, times: list[float], statuses: list[int]
) -> None:
    while time.monotonic() < until:
        began = time.perf_counter()
        response = await request(client)
        times.append(time.perf_counter() - began)
        statuses.append(response.status_code)


async def measure(
    broker: str, token: str, duration: float, readers: int, guessers: int
) -> dict[str, Any]:
    bearer = {"Authorization": f"Bearer {token}"}
    timings: dict[str, list[float]] = {"me": [], "healthz": [], "password": []}
    statuses: dict[str, list[int]] = {name: [] for name in timings}

    async def me(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get(f"{broker}/api/v1/me", headers=bearer)

    async def healthz(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get(f"{broker}/healthz")

    async def password(client: httpx.AsyncClient) -> httpx.Response:
        identifier = f"09{random.randrange(10**8):08d}"  # names no one; a new one each time
        return await client.post(
            f"{broker}/api/v1/auth/password",
            json={"identifier": identifier, "password": "doan-sai-2026"},
        )

    until = time.monotonic() + duration
    limits = httpx.Limits(max_connections=readers + guessers + 2)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        jobs = [loop(client, me, until, timings["me"], statuses["me"]) for _ in range(readers)]
        jobs.append(loop(client, healthz, until, timings["healthz"], statuses["healthz"]))
        jobs += [
            loop(client, password, until, timings["password"], statuses["password"])
            for _ in range(guessers)
        ]
        await asyncio.gather(*jobs)
    return {
        name: percentiles(values)
        | {"per_s": round(len(values) / duration, 1), "statuses": sorted(set(statuses[name]))}
        for name, values in timings.items()
        if values
    }


def start_demo(source: Path | None, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port, sim_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSSID_")} | {
        "VSSID_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bench.sqlite3'}",
        "VSSID_KEY_ENCRYPTION_KEY_FILE": str(workdir / "kek"),
        "VSSID_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "VSSID_VNEID_ISSUER": f"http://127.0.0.1:{sim_port}",
        "VSSID_LOG_LEVEL": "WARNING",
    }
    for name in ("PASSWORD_PER_IP", "PASSWORD_PER_IDENTIFIER", "PASSWORD_PER_IP_AND_IDENTIFIER"):
        env[f"VSSID_RATE_LIMIT_{name}"] = "1000000/minute"
    if source is not None:
        env["PYTHONPATH"] = str(source)
    command = [str(VENV_BIN / "python"), "-c", RUN_CLI, "demo", "--port", str(port)]
    demo = subprocess.Popen(  # noqa: S603 - our own command
        [*command, "--sim-port", str(sim_port)],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    broker = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{broker}/readyz", timeout=1).status_code == 200:
                return demo, broker
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    demo.terminate()
    raise SystemExit("the demo did not come up")


async def run(opts: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        demo, broker = start_demo(opts.source, Path(tmp))
        try:
            token = await access_token(broker)
            alone = await measure(broker, token, opts.duration, opts.readers, 0)
            beside = await measure(broker, token, opts.duration, opts.readers, opts.guessers)
        finally:
            demo.terminate()
            demo.wait(timeout=30)
    return {
        "command": "python3 bench/password_beside_me.py " + " ".join(sys.argv[1:]),
        "source": str(opts.source or "this tree"),
        "cpus": os.cpu_count(),
        "duration_s": opts.duration,
        "readers": opts.readers,
        "guessers": opts.guessers,
        "alone": alone,
        "beside_password_attempts": beside,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10, help="seconds per phase")
    parser.add_argument("--readers", type=int, default=4, help="concurrent /api/v1/me callers")
    parser.add_argument("--guessers", type=int, default=12, help="concurrent password attempts")
    parser.add_argument("--source", type=Path, help="run the broker from this source tree")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    opts = parser.parse_args()
    result = asyncio.run(run(opts))
    text = json.dumps(result, indent=2)
    print(text)
    if opts.out:
        opts.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
