"""Password checks run beside the event loop, a bounded number at a time: a sign-in in flight
never holds up a health check or a refresh, and a burst of attempts queues for the threads.

The argon2 check is replaced by one that waits for the test to let it go, so "the loop was not
blocked" is shown by another request being answered meanwhile, not by a timing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Stack
from tests.support.http import AsyncClient
from vssid_broker import passwords


class HeldChecks:
    """Password checks that wait until released, counting how many run at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def check(self, password_hash: str, password: str) -> bool:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.started.release()
        self.release.wait(timeout=20)
        with self._lock:
            self.running -= 1
        return False


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch, stack: Stack) -> Iterator[HeldChecks]:
    checks = HeldChecks()
    monkeypatch.setattr(passwords, "_matches", checks.check)
    yield checks
    checks.release.set()
    passwords.set_hash_threads(stack.settings.password_hash_threads)


async def wait_started(checks: HeldChecks, count: int) -> None:
    for _ in range(count):
        assert await asyncio.to_thread(checks.started.acquire, True, 10), "check never started"


async def attempt(client: httpx.AsyncClient, broker: str, n: int = 0) -> httpx.Response:
    return await client.post(
        f"{broker}/api/v1/auth/password",
        json={"identifier": f"099999999{n}", "password": "doan-sai"},
    )


async def test_a_password_check_in_flight_does_not_hold_up_other_requests(
    stack: Stack, held: HeldChecks
) -> None:
    async with AsyncClient(timeout=30) as client:
        sign_in = asyncio.create_task(attempt(client, stack.broker))
        await wait_started(held, 1)
        # The check is still running: the loop answers the health check and the JWKS.
        health = await client.get(f"{stack.broker}/healthz", timeout=5)
        assert health.status_code == 200
        assert (await client.get(f"{stack.broker}/.well-known/jwks.json", timeout=5)).is_success
        assert not sign_in.done()
        held.release.set()
        assert (await sign_in).status_code == 401


async def test_password_checks_run_at_most_the_configured_number_at_once(
    stack: Stack, held: HeldChecks
) -> None:
    with stack.broker_with(password_hash_threads=2) as broker:
        async with AsyncClient(timeout=30) as client:
            attempts = [asyncio.create_task(attempt(client, broker, n)) for n in range(5)]
            await wait_started(held, 2)
            await asyncio.sleep(0.3)  # room for a third to start, were the bound not there
            assert held.running == 2
            held.release.set()
            answers = await asyncio.gather(*attempts)
    assert [a.status_code for a in answers] == [401] * 5
    assert held.most_at_once == 2
