"""A rolling restart of the broker behind a load balancer, with the simulated VNeID beside it:
for tests and benchmarks of what an operator does while people keep signing in (the key
rotations of docs/privacy.md: tests/e2e/test_rotation_under_load.py, bench/rotation_bench.py)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from joserfc.jwk import OctKey

from tests.support.flows import app_complete, app_until_redirect
from tests.support.live_server import free_port
from vssid_broker import sealing
from vssid_broker.sessions.keys import KeyEncryptionKeys
from vssid_broker.vneid_sim.driver import sign_in_at_vneid

COMMAND = shutil.which("vssid-broker") or str(Path(sys.executable).parent / "vssid-broker")


# --- the load balancer in front of the broker's processes ---------------------------------------
class Balancer:
    """Requests to the public address go to the broker process serving now (`switch_to`); the
    count of requests each process holds says when a replaced one has finished."""

    def __init__(self, public_port: int) -> None:
        self.public_port = public_port
        self.backend = 0
        self.in_flight: Counter[int] = Counter()
        self._idle: dict[int, asyncio.Event] = {}

    @property
    def public(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    def client(self) -> httpx.AsyncClient:
        """One person's browser or app: its own cookies and connections."""
        return httpx.AsyncClient(transport=_Routed(self), timeout=60)

    async def switch_to(self, port: int) -> None:
        """New requests go to `port`; returns once the process replaced has answered all it
        held (a load balancer's deregistration delay, without the guess of a delay)."""
        replaced, self.backend = self.backend, port
        if self.in_flight[replaced]:
            await self._idle[replaced].wait()

    def _enter(self, port: int) -> None:
        self.in_flight[port] += 1
        self._idle.setdefault(port, asyncio.Event()).clear()

    def _leave(self, port: int) -> None:
        self.in_flight[port] -= 1
        if not self.in_flight[port]:
            self._idle[port].set()


class _Routed(httpx.AsyncBaseTransport):
    def __init__(self, balancer: Balancer) -> None:
        self.balancer = balancer
        # An idle connection is dropped well before the servers' keep-alive timeout (uvicorn's
        # 5 s): one reused just as the server closes it fails with no answer, which is the
        # client's race, not the broker's refusal (a login's steps at VNeID take seconds on
        # a loaded machine).
        self.inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(keepalive_expiry=1.0))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.port != self.balancer.public_port:
            return await self.inner.handle_async_request(request)  # VNeID
        backend = self.balancer.backend
        request.url = request.url.copy_with(port=backend)
        self.balancer._enter(backend)
        try:
            response = await self.inner.handle_async_request(request)
            await response.aread()
            return response
        finally:
            self.balancer._leave(backend)

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- processes ------------------------------------------------------------------------------------
def log_of(args: tuple[str, ...] | list[str], cwd: Path) -> Path:
    return cwd / f"{args[0]}-{args[-1]}.log"


@contextlib.contextmanager
def started(*args: str, env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """A process whose output goes to a file (a pipe nobody reads would fill and stop it)."""
    with log_of(args, cwd).open("w") as output:
        process = subprocess.Popen(  # noqa: S603 - our own command
            [COMMAND, *args], env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, text=True
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def ready(process: subprocess.Popen[str], url: str, log: Path) -> None:
    """Wait (a minute at most) until `url` answers 200; the process's `log` if it ends."""
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(600):
            if process.poll() is not None:
                output = await asyncio.to_thread(log.read_text)
                raise AssertionError(f"{log.name} ended:\n{output[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{log.name}: did not come up")


@dataclass
class Keys:
    """The settings of one step of the runbook, as the processes are given them."""

    kek: str
    index: str
    previous_keks: tuple[str, ...] = ()
    previous_index: tuple[str, ...] = ()

    def env(self) -> dict[str, str]:
        return {
            "VSSID_KEY_ENCRYPTION_KEY": self.kek,
            "VSSID_CITIZEN_ID_PREVIOUS_KEKS": json.dumps(list(self.previous_keks)),
            "VSSID_BLIND_INDEX_KEY": self.index,
            "VSSID_BLIND_INDEX_PREVIOUS_KEYS": json.dumps(list(self.previous_index)),
        }

    def citizen_ids(self) -> sealing.CitizenIdKeys:
        decode = base64.urlsafe_b64decode
        return sealing.CitizenIdKeys.from_secrets(
            decode(self.kek), [decode(k) for k in self.previous_keks], decode(self.index)
        )

    def secrets(self) -> KeyEncryptionKeys:
        return KeyEncryptionKeys(
            OctKey.import_key(base64.urlsafe_b64decode(self.kek)),
            [OctKey.import_key(base64.urlsafe_b64decode(k)) for k in self.previous_keks],
        )


@dataclass
class Deployment:
    """The broker's processes behind the balancer, replaced one by one as the runbook says."""

    balancer: Balancer
    base_env: dict[str, str]
    cwd: Path
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    serving: list[contextlib.ExitStack] = field(default_factory=list)
    serve_args: tuple[str, ...] = ()
    """More arguments of `serve` (`--workers N`)."""

    def env(self, keys: Keys) -> dict[str, str]:
        return self.base_env | keys.env()

    async def roll_out(self, keys: Keys) -> None:
        """A new process with these keys takes the traffic; the old one finishes and stops."""
        port = free_port()
        process_stack = contextlib.ExitStack()
        serve = ("serve", *self.serve_args, "--port", str(port))
        process = process_stack.enter_context(started(*serve, env=self.env(keys), cwd=self.cwd))
        await ready(process, f"http://127.0.0.1:{port}/readyz", log_of(serve, self.cwd))
        await self.balancer.switch_to(port)
        if self.serving:
            await asyncio.to_thread(self.serving.pop().close)
        self.serving.append(process_stack)

    async def run(self, keys: Keys, *args: str, stdin: str = "") -> str:
        """A command, as an operator runs it beside the serving processes: its output."""
        process = await asyncio.create_subprocess_exec(
            COMMAND, *args, env=self.env(keys), cwd=self.cwd,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await process.communicate(stdin.encode())
        text = output.decode()
        assert process.returncode == 0, text[-3000:]
        return text

    def close(self) -> None:
        while self.serving:
            self.serving.pop().close()


def sim_registrations(broker: str) -> list[dict[str, object]]:
    """The broker's two registrations at the simulator (web and the app's native one)."""
    return [
        {
            "client_id": "vssid-broker",
            "client_secret": "vssid-broker-demo-secret",
            "redirect_uris": [f"{broker}/auth/vneid/callback"],
            "token_endpoint_auth_methods": ["client_secret_basic", "client_secret_post"],
        },
        {
            "client_id": "vssid-broker-app",
            "application_type": "native",
            "redirect_uris": ["vn.gov.baohiemxahoi.vssid:/oauth/vneid"],
            "token_endpoint_auth_methods": ["none"],
        },
    ]


# --- one login, checked to land on an account -------------------------------------------------
@dataclass(frozen=True)
class SignedIn:
    bhxh_code: str
    """The account the login landed on."""
    seconds: float
    """How long the broker took to complete it (the app's `complete`, the browser's callback)."""


async def app_login(balancer: Balancer, citizen_id: str) -> SignedIn:
    """The app's login (start, VNeID, complete); AssertionError unless it is signed in."""
    async with balancer.client() as app:
        redirect = await app_until_redirect(app, balancer.public, citizen_id)
        started = time.perf_counter()
        complete = await app_complete(app, balancer.public, redirect)
        seconds = time.perf_counter() - started
    assert complete.status_code == 200, f"{complete.status_code} {complete.text[:200]}"
    return SignedIn(complete.json()["account"]["bhxh_code"], seconds)


async def browser_login(
    balancer: Balancer, citizen_id: str, browser: httpx.AsyncClient | None = None
) -> SignedIn:
    """The browser's login (button, VNeID, callback, account page); AssertionError unless it is
    signed in. `browser` keeps its cookies (a session to use later)."""
    async with browser or balancer.client() as client:
        start = await client.get(f"{balancer.public}/auth/vneid/login")
        assert start.status_code == 302, f"start: {start.status_code} {start.text[:200]}"
        back = await sign_in_at_vneid(client, start.headers["location"], citizen_id)
        started = time.perf_counter()
        callback = await client.get(back)
        seconds = time.perf_counter() - started
        if callback.status_code == 303:  # refused: the outcome page names the refusal's code
            refusal = await client.get(str(callback.url.join(callback.headers["location"])))
            found = re.search(r'<code id="error-code">([^<]+)</code>', refusal.text)
            raise AssertionError(f"refused: {found.group(1) if found else refusal.status_code}")
        assert callback.status_code == 302, f"{callback.status_code} {callback.text[:200]}"
        assert callback.headers["location"] == "/account", callback.headers["location"]
        page = await client.get(f"{balancer.public}/account")
    assert page.status_code == 200, f"account: {page.status_code}"
    code = page.text.split('<dd id="bhxh-code">', 1)[1].split("<", 1)[0]
    return SignedIn(code, seconds)
