"""Load driver: runs one scenario with a fixed concurrency for a fixed duration, prints JSON.

Started by `bench/run.py` as its own process, so the load it makes is not counted in the
servers' CPU. Multi-step flows use async httpx; every worker repeats its flow until the time is
up and records each operation's latency (and, for logins, the time spent in broker requests only).
It also makes the tokens that `wrk` spends (`refresh_tokens`, `peer_refresh_tokens`,
`access_token`): refresh rotation is driven by wrk (`bench/wrk_refresh.lua`), not from Python.

Every simulated phone or browser (one login, one cookie jar) sends the broker an address of its
own in `X-Forwarded-For`, as the ingress would: the harness starts the broker trusting loopback
as its proxy, so the per-address rate limits apply as shipped, to a spread of phones.

    python bench/driver.py mobile_login --broker URL --sim URL --duration 20 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import random
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from vssid_broker.vneid_sim.driver import sign_in_at_vneid  # the same page driver as the tests

APP_REDIRECT_URI = "vn.gov.baohiemxahoi.vssid:/oauth/vneid"
PEER_REDIRECT_URI = "http://127.0.0.1/cb"
# Built once: httpx makes a fresh SSL context per client otherwise (~50 ms of CPU each, even for
# http:// URLs), which made the driver, not the servers, the bound of the login scenarios.
TLS = ssl.create_default_context()
PHONES = IPv4Network("10.0.0.0/8")
STEP_UP_MAX_AGE_SECONDS = 300
"""What the broker's challenge asks for by default (`VSSID_STEP_UP_MAX_AGE_SECONDS`)."""


class ClientAddresses:
    """One address per simulated client, in turn through 10.0.0.0/8 from a random start: a
    driver process hands out each address once (16 million of them), and the processes of one
    run rarely meet inside a rate limit's window."""

    def __init__(self) -> None:
        self._next = random.randrange(PHONES.num_addresses)

    def take(self) -> dict[str, str]:
        """The headers of a new client: its own `X-Forwarded-For`."""
        offset, self._next = self._next, (self._next + 1) % PHONES.num_addresses
        address = IPv4Address(int(PHONES.network_address) + offset)
        return {"X-Forwarded-For": str(address)}


CLIENTS = ClientAddresses()


@dataclass
class Recorder:
    latencies: list[float] = field(default_factory=list)
    broker_latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""

    def error(self, message: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or message[:300]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 2),
        "p95": round(percentile(values, 95), 2),
        "p99": round(percentile(values, 99), 2),
        "mean": round(sum(values) / len(values), 2) if values else 0.0,
    }


def query_of(url: str) -> dict[str, str]:
    """The query's fields as the app reads a redirect: a "+" stays a "+" (VNeID's dialect sends
    base64 codes unescaped; a form decoder would make it a space)."""
    query = urlsplit(url).query.replace("+", "%2B")
    return {key: values[0] for key, values in parse_qs(query).items()}


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def level2_citizens(count: int) -> list[str]:
    """Citizen IDs the simulator generated that can complete a level-2 login."""
    from vssid_broker.vneid_sim.citizens import generate_citizens

    return [c.citizen_id for c in generate_citizens(count) if c.level == 2 and not c.locked]


class Timer:
    def __init__(self) -> None:
        self.broker = 0.0

    async def broker_call(self, call: Awaitable[httpx.Response]) -> httpx.Response:
        started = time.perf_counter()
        response = await call
        self.broker += time.perf_counter() - started
        return response


# --- the broker's flows -----------------------------------------------------------------------
async def browser_login(args: argparse.Namespace, citizens: list[str]) -> float:
    """Start → VNeID pages → callback → account page, in one cookie jar; returns broker ms."""
    timer = Timer()
    async with httpx.AsyncClient(timeout=30, verify=TLS, headers=CLIENTS.take()) as browser:
        start = await timer.broker_call(browser.get(f"{args.broker}/auth/vneid/login"))
        if start.status_code != 302:
            raise RuntimeError(f"start {start.status_code}")
        back = await sign_in_at_vneid(browser, start.headers["location"], random.choice(citizens))
        callback = await timer.broker_call(browser.get(back))
        if callback.status_code != 302:
            raise RuntimeError(f"callback {callback.status_code}: {callback.text[:200]}")
        page = await timer.broker_call(browser.get(urljoin(back, callback.headers["location"])))
        if page.status_code != 200:
            raise RuntimeError(f"account page {page.status_code}")
    return timer.broker * 1000


async def mobile_login(
    args: argparse.Namespace,
    citizens: list[str],
    app: httpx.AsyncClient | None = None,
    timer: Timer | None = None,
    **start_fields: Any,
) -> tuple[float, dict[str, Any]]:
    """The app's login: start (with `start_fields`, e.g. a step-up's `max_age`) → VNeID's
    pages → complete, in either provider profile. Returns broker ms and the tokens."""
    timer = timer or Timer()
    async with contextlib.AsyncExitStack() as stack:
        if app is None:
            app = await stack.enter_async_context(
                httpx.AsyncClient(timeout=30, verify=TLS, headers=CLIENTS.take())
            )
        verifier, challenge = pkce_pair()
        start = await timer.broker_call(
            app.post(
                f"{args.broker}/api/v1/auth/vneid/start",
                json={
                    "redirect_uri": APP_REDIRECT_URI,
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                    **start_fields,
                },
            )
        )
        if start.status_code != 200:
            raise RuntimeError(f"start {start.status_code}: {start.text[:200]}")
        location = await sign_in_at_vneid(
            app, start.json()["authorization_url"], random.choice(citizens)
        )
        params = query_of(location)
        body = {
            "code": params.get("code", ""),
            "state": params.get("state", ""),
            "code_verifier": verifier,
        }
        # `iss` when the provider sent one (the dialect does not); the dialect's
        # `encrypt_key` beside an encrypted code.
        body |= {name: params[name] for name in ("iss", "encrypt_key") if name in params}
        complete = await timer.broker_call(
            app.post(f"{args.broker}/api/v1/auth/vneid/complete", json=body)
        )
        if complete.status_code != 200:
            raise RuntimeError(f"complete {complete.status_code}: {complete.text[:200]}")
    return timer.broker * 1000, complete.json()


async def step_up_login(args: argparse.Namespace, citizens: list[str]) -> float:
    """A request to the agency behind a fresh sign-in, as `/demo/app` makes it once the broker
    has answered `step_up_required` (RFC 9470; that 401 itself is not part of it): the app
    signs in again with the challenge's `max_age`, submits the request with the new token, and
    (here) cancels it, so the person may submit again (one open request of a kind). Returns
    broker ms of the four calls."""
    timer = Timer()
    async with httpx.AsyncClient(timeout=30, verify=TLS, headers=CLIENTS.take()) as app:
        _, tokens = await mobile_login(args, citizens, app, timer, max_age=STEP_UP_MAX_AGE_SECONDS)
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        requests = f"{args.broker}/api/v1/me/requests"
        # A new phone number: the one kind every account can ask for (a card re-issue needs a
        # card on record, which a seeded account has only sometimes).
        new_phone = f"09{random.randrange(10**8):08d}"
        submitted = await timer.broker_call(
            app.post(
                requests, json={"kind": "phone_change", "new_phone": new_phone}, headers=bearer
            )
        )
        if submitted.status_code != 201:
            raise RuntimeError(f"submit {submitted.status_code}: {submitted.text[:200]}")
        reference = submitted.json()["reference"]
        cancelled = await timer.broker_call(
            app.post(f"{requests}/{reference}/cancel", headers=bearer)
        )
        if cancelled.status_code != 200:
            raise RuntimeError(f"cancel {cancelled.status_code}: {cancelled.text[:200]}")
    return timer.broker * 1000


async def run_loop(
    args: argparse.Namespace,
    make_worker: Callable[[int], Awaitable[Callable[[], Awaitable[float | None]]]],
) -> tuple[Recorder, float]:
    """Each worker repeats its operation until the deadline; the op returns broker ms or None."""
    recorder = Recorder()
    operations = [await make_worker(i) for i in range(args.concurrency)]
    deadline = time.perf_counter() + args.duration

    async def worker(operation: Callable[[], Awaitable[float | None]]) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                broker_ms = await operation()
            except Exception as error:  # a failed operation is counted, the load goes on
                recorder.error(f"{type(error).__name__}: {error}")
                continue
            recorder.latencies.append((time.perf_counter() - started) * 1000)
            if broker_ms is not None:
                recorder.broker_latencies.append(broker_ms)

    started = time.perf_counter()
    await asyncio.gather(*(worker(op) for op in operations))
    return recorder, time.perf_counter() - started


async def scenario_browser_login(args: argparse.Namespace) -> tuple[Recorder, float]:
    citizens = level2_citizens(args.citizens)

    async def make(_: int) -> Callable[[], Awaitable[float | None]]:
        return lambda: browser_login(args, citizens)

    return await run_loop(args, make)


async def scenario_mobile_login(args: argparse.Namespace) -> tuple[Recorder, float]:
    citizens = level2_citizens(args.citizens)

    async def make(_: int) -> Callable[[], Awaitable[float | None]]:
        async def op() -> float:
            return (await mobile_login(args, citizens))[0]

        return op

    return await run_loop(args, make)


async def scenario_step_up_login(args: argparse.Namespace) -> tuple[Recorder, float]:
    citizens = level2_citizens(args.citizens)

    async def make(worker: int) -> Callable[[], Awaitable[float | None]]:
        # Each worker its own people: two workers submitting for one person at once would meet
        # "a request of this kind is already open", a refusal the scenario does not measure.
        own = citizens[worker :: args.concurrency] or citizens
        return lambda: step_up_login(args, own)

    return await run_loop(args, make)


async def print_refresh_tokens(args: argparse.Namespace) -> None:
    """Twice `--concurrency` app logins; prints their refresh tokens, one per line, for wrk
    (the spares keep a connection busy if a token is lost to an error)."""
    citizens = level2_citizens(args.citizens)
    logins = [mobile_login(args, citizens) for _ in range(2 * args.concurrency)]
    for _, tokens in await asyncio.gather(*logins):
        print(tokens["refresh_token"])


async def print_peer_refresh_tokens(args: argparse.Namespace) -> None:
    """The same at the peer: twice `--concurrency` code flows, each printing its refresh token."""

    async def one() -> str:
        client, code = await peer_session(args)
        try:
            tokens = await peer_exchange_code(client, args.peer, code)
        finally:
            await client.aclose()
        return str(tokens["refresh_token"])

    for token in await asyncio.gather(*(one() for _ in range(2 * args.concurrency))):
        print(token)


async def print_access_token(args: argparse.Namespace) -> None:
    """One app login; prints the access token for wrk (the harness passes it on, never logs it)."""
    tokens = (await mobile_login(args, level2_citizens(args.citizens)))[1]
    print(tokens["access_token"])


async def scenario_jwks_verify(args: argparse.Namespace) -> tuple[Recorder, float]:
    """Another service verifying access tokens with only the JWKS: an in-process joserfc loop."""
    from joserfc import jwt
    from joserfc.jwk import KeySet
    from joserfc.jwt import JWTClaimsRegistry

    tokens = (await mobile_login(args, level2_citizens(args.citizens)))[1]
    async with httpx.AsyncClient(verify=TLS, headers=CLIENTS.take()) as client:
        jwks = (await client.get(f"{args.broker}/.well-known/jwks.json")).json()
    keys = KeySet.import_key_set(jwks)
    recorder = Recorder()
    raw = tokens["access_token"]
    deadline = time.perf_counter() + args.duration
    cpu_started, started = time.process_time(), time.perf_counter()
    while time.perf_counter() < deadline:
        op_started = time.perf_counter()
        token = jwt.decode(raw, keys, algorithms=["ES256", "EdDSA"])
        JWTClaimsRegistry(
            iss={"essential": True, "value": args.broker},
            aud={"essential": True, "value": "vssid"},
            exp={"essential": True},
        ).validate(token.claims)
        if token.header.get("typ") != "at+jwt":
            recorder.error("not an access token")
        recorder.latencies.append((time.perf_counter() - op_started) * 1000)
    elapsed = time.perf_counter() - started
    recorder.first_error = recorder.first_error or ""
    args.driver_cpu_seconds = time.process_time() - cpu_started
    return recorder, elapsed


# --- the peer: panva's oidc-provider ------------------------------------------------------------
async def peer_session(args: argparse.Namespace) -> tuple[httpx.AsyncClient, str]:
    """Sign in once at the peer through its interactions (cookie jar), as a browser would."""
    client = httpx.AsyncClient(timeout=30, verify=TLS)
    code = await peer_authorize(client, args.peer)
    return client, code


async def peer_authorize(client: httpx.AsyncClient, peer: str) -> str:
    verifier, challenge = pkce_pair()
    client.verifier = verifier  # type: ignore[attr-defined]
    response = await client.get(
        f"{peer}/auth",
        params={
            "client_id": "bench",
            "response_type": "code",
            "redirect_uri": PEER_REDIRECT_URI,
            "scope": "openid",
            "state": secrets.token_urlsafe(16),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    for _ in range(8):
        if response.status_code not in (302, 303):
            raise RuntimeError(f"peer authorize {response.status_code}: {response.text[:200]}")
        location = urljoin(str(response.url), response.headers["location"])
        if location.startswith(PEER_REDIRECT_URI):
            params = query_of(location)
            if "code" not in params:
                raise RuntimeError(f"peer refused: {params}")
            return params["code"]
        if "/interaction/" in location:
            # The peer's own login and consent steps (bench/peer/server.js answers them).
            response = await client.post(location + "/auto")
        else:
            response = await client.get(location)
    raise RuntimeError("peer authorize: too many redirects")


async def peer_token(client: httpx.AsyncClient, peer: str, data: dict[str, str]) -> dict[str, Any]:
    response = await client.post(f"{peer}/token", data=data, auth=("bench", "bench-secret"))
    if response.status_code != 200:
        raise RuntimeError(f"peer token {response.status_code}: {response.text[:200]}")
    result: dict[str, Any] = response.json()
    return result


async def peer_exchange_code(client: httpx.AsyncClient, peer: str, code: str) -> dict[str, Any]:
    """The token request of the peer's code flow, with the PKCE verifier `peer_authorize` kept."""
    return await peer_token(
        client,
        peer,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": PEER_REDIRECT_URI,
            "code_verifier": client.verifier,  # type: ignore[attr-defined]
        },
    )


async def scenario_peer_authcode(args: argparse.Namespace) -> tuple[Recorder, float]:
    async def make(_: int) -> Callable[[], Awaitable[float | None]]:
        client, _code = await peer_session(args)

        async def op() -> None:
            code = await peer_authorize(client, args.peer)
            await peer_exchange_code(client, args.peer, code)

        return op

    return await run_loop(args, make)


SCENARIOS = {
    "browser_login": scenario_browser_login,
    "mobile_login": scenario_mobile_login,
    # The same app login; bench/run.py points it at a broker and a simulator in the dialect.
    "dialect_login": scenario_mobile_login,
    "step_up_login": scenario_step_up_login,
    "jwks_verify": scenario_jwks_verify,
    "peer_authcode": scenario_peer_authcode,
}

TOKEN_PRINTERS = {
    "access_token": print_access_token,
    "refresh_tokens": print_refresh_tokens,
    "peer_refresh_tokens": print_peer_refresh_tokens,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "scenario",
        choices=[*SCENARIOS, *TOKEN_PRINTERS],
        help="a scenario to run, or tokens to print for wrk",
    )
    parser.add_argument("--broker", default="http://127.0.0.1:8000")
    parser.add_argument("--sim", default="http://127.0.0.1:9000")
    parser.add_argument("--peer", default="http://127.0.0.1:3000")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--citizens", type=int, default=2000)
    args = parser.parse_args()
    args.driver_cpu_seconds = None
    if args.scenario in TOKEN_PRINTERS:
        asyncio.run(TOKEN_PRINTERS[args.scenario](args))
        return
    recorder, elapsed = asyncio.run(SCENARIOS[args.scenario](args))
    result: dict[str, Any] = {
        "scenario": args.scenario,
        "ops": len(recorder.latencies),
        "errors": recorder.errors,
        "first_error": recorder.first_error,
        "elapsed_s": round(elapsed, 3),
        "throughput": round(len(recorder.latencies) / elapsed, 1) if elapsed else 0.0,
        "latency_ms": summary(recorder.latencies),
        "concurrency": args.concurrency,
    }
    if recorder.broker_latencies:
        result["broker_latency_ms"] = summary(recorder.broker_latencies)
    if args.driver_cpu_seconds is not None:
        result["driver_cpu_s"] = round(args.driver_cpu_seconds, 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
