"""Rate limits and the lockout, as an attacker meets them: one client cannot stall the service,
cannot lock someone else's sign-in, and cannot tell from a lockout whether an identifier exists.

Each test runs a broker of its own with tight limits; the shared test broker has limits no
test reaches (tests/conftest.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Stack
from tests.linking.test_password_proof import PASSWORD, give_password
from tests.support.flows import APP_REDIRECT_URI, AppPkce
from tests.support.http import AsyncClient
from tests.support.live_server import free_port
from tests.support.redis_server import SuiteRedis
from tests.test_cli import running, serve_env
from vssid_broker.accounts.models import AccountPassword
from vssid_broker.rate_limits import RateLimits

AN_BHXH = "0112345678"
NO_ONE_BHXH = "0999999999"


async def give_an_a_password(stack: Stack) -> int:
    return await give_password(stack, AN_BHXH)


async def sign_in(
    broker: str, identifier: str, password: str, *, forwarded_for: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    async with AsyncClient() as app:
        return await app.post(
            f"{broker}/api/v1/auth/password",
            json={"identifier": identifier, "password": password},
            headers=headers,
        )


async def rate_limit_hits(broker: str, limit: str) -> float:
    async with AsyncClient() as client:
        exposition = (await client.get(f"{broker}/metrics")).text
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "vssid_rate_limit_hits_total" and sample.labels == {"limit": limit}:
                return sample.value
    return 0.0


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1


async def test_one_client_is_stopped_before_it_can_lock_someone_out(stack: Stack) -> None:
    account_id = await give_an_a_password(stack)
    with stack.broker_with(
        rate_limit_password_per_ip_and_identifier="3/15minutes",
        password_max_failures=5,
        trusted_proxies=["127.0.0.1/32"],
    ) as broker:
        attacker = "198.51.100.7"
        for _ in range(3):
            wrong = await sign_in(broker, AN_BHXH, "doan-sai", forwarded_for=attacker)
            assert wrong.json()["code"] == "invalid_credentials"
        hits_before = await rate_limit_hits(broker, "password_per_ip_and_identifier")
        assert_rate_limited(await sign_in(broker, AN_BHXH, "doan-sai", forwarded_for=attacker))
        # Operators see it: the refusal is counted under the limit's name.
        assert await rate_limit_hits(broker, "password_per_ip_and_identifier") == hits_before + 1
        # The person, from their own phone, still signs in: the attacker never reached a lock.
        person = await sign_in(broker, AN_BHXH, PASSWORD, forwarded_for="203.0.113.20")
        assert person.status_code == 200, person.text
    async with stack.db() as session:
        credential = await session.get(AccountPassword, account_id)
    assert credential is not None and credential.locked_until is None


async def test_a_lockout_answers_the_same_whether_the_identifier_exists(stack: Stack) -> None:
    await give_an_a_password(stack)
    with stack.broker_with(password_max_failures=3) as broker:
        answers = {}
        for identifier in (AN_BHXH, NO_ONE_BHXH, "not-an-identifier"):
            answers[identifier] = [
                (r.status_code, r.json()["code"], r.json()["title"], r.headers.get("retry-after"))
                for r in [await sign_in(broker, identifier, "doan-sai") for _ in range(5)]
            ]
        assert answers[AN_BHXH] == answers[NO_ONE_BHXH] == answers["not-an-identifier"]
        assert [status for status, *_ in answers[NO_ONE_BHXH]] == [401, 401, 429, 429, 429]


async def test_a_staff_username_that_names_no_one_locks_like_a_real_one(stack: Stack) -> None:
    from vssid_broker.admin.models import StaffRole
    from vssid_broker.admin.service import create_staff_user

    async with stack.db.begin() as session:
        await create_staff_user(
            session,
            username="thu",
            password="thu-mat-khau-2026",
            role=StaffRole.REVIEWER,
            now=stack.clock(),
        )
    with stack.broker_with(password_max_failures=2) as broker:
        async with AsyncClient() as staff:
            answers = {
                username: [
                    (r.status_code, r.json()["code"])
                    for r in [
                        await staff.post(
                            f"{broker}/admin/api/v1/token",
                            json={
                                "username": username,
                                "password": "doan-sai-2026",
                                "otp": "000000",
                            },
                        )
                        for _ in range(4)
                    ]
                ]
                for username in ("thu", "khong-ai")
            }
    assert answers["thu"] == answers["khong-ai"]
    assert answers["thu"][-1] == (429, "staff_sign_in_locked")


async def test_password_attempts_at_one_identifier_are_limited_from_every_address(
    stack: Stack,
) -> None:
    with stack.broker_with(
        rate_limit_password_per_identifier="2/hour", trusted_proxies=["127.0.0.1/32"]
    ) as broker:
        for address in ("198.51.100.1", "198.51.100.2"):
            response = await sign_in(broker, NO_ONE_BHXH, "doan-sai", forwarded_for=address)
            assert response.status_code == 401
        assert_rate_limited(
            await sign_in(broker, NO_ONE_BHXH, "doan-sai", forwarded_for="198.51.100.3")
        )


async def start_login(client: httpx.AsyncClient, broker: str, **headers: str) -> httpx.Response:
    return await client.post(
        f"{broker}/api/v1/auth/vneid/start",
        json={
            "redirect_uri": APP_REDIRECT_URI,
            "code_challenge": AppPkce.new().challenge,
            "code_challenge_method": "S256",
        },
        headers=headers,
    )


async def test_a_forwarded_address_counts_only_from_a_trusted_proxy(stack: Stack) -> None:
    async with AsyncClient() as client:
        with stack.broker_with(rate_limit_login_start_per_ip="2/minute") as broker:
            # Not behind a trusted proxy: a made-up X-Forwarded-For changes nothing.
            for n in range(2):
                forged = {"X-Forwarded-For": f"192.0.2.{n}"}
                assert (await start_login(client, broker, **forged)).status_code == 200
            assert_rate_limited(
                await start_login(client, broker, **{"X-Forwarded-For": "192.0.2.99"})
            )
        with stack.broker_with(
            rate_limit_login_start_per_ip="2/minute", trusted_proxies=["127.0.0.0/8"]
        ) as broker:
            # Behind the proxy, each client is counted on its own; the proxy's own hop and
            # any address the client wrote before it are not the client.
            for _ in range(2):
                hops = {"X-Forwarded-For": "10.9.9.9, 198.51.100.50"}
                assert (await start_login(client, broker, **hops)).status_code == 200
            assert_rate_limited(
                await start_login(client, broker, **{"X-Forwarded-For": "1.1.1.1, 198.51.100.50"})
            )
            other = {"X-Forwarded-For": "198.51.100.51, 127.0.0.2"}
            assert (await start_login(client, broker, **other)).status_code == 200


async def test_the_token_endpoint_is_limited_per_client(stack: Stack) -> None:
    async with AsyncClient() as client:
        with stack.broker_with(rate_limit_token_per_ip="2/minute") as broker:
            body = {"grant_type": "refresh_token", "refresh_token": "unknown"}
            for _ in range(2):
                refused = await client.post(f"{broker}/api/v1/auth/token", data=body)
                assert refused.json()["code"] == "invalid_grant"
            assert_rate_limited(await client.post(f"{broker}/api/v1/auth/token", data=body))


async def test_two_processes_sharing_redis_share_the_counts(
    stack: Stack, tmp_path: Path, redis_for_tests: SuiteRedis
) -> None:
    port_a, port_b = free_port(), free_port()
    # A key prefix of this test's own: no counts yet, and no other key is touched.
    prefix = redis_for_tests.prefix_for("two-processes")
    env = serve_env(
        stack,
        tmp_path,
        public_port=port_a,
        VSSID_RATE_LIMIT_STORAGE=redis_for_tests.url,
        VSSID_RATE_LIMIT_KEY_PREFIX=prefix,
        VSSID_RATE_LIMIT_LOGIN_START_PER_IP="3/minute",
    )
    a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    with (
        running("serve", "--port", str(port_a), env=env, cwd=tmp_path, ready_url=f"{a}/readyz"),
        running("serve", "--port", str(port_b), env=env, cwd=tmp_path, ready_url=f"{b}/readyz"),
    ):
        async with AsyncClient(timeout=10) as client:
            answers = [(await start_login(client, broker)).status_code for broker in (a, b, a)]
            assert answers == [200, 200, 200]
            assert_rate_limited(await start_login(client, b))
            assert_rate_limited(await start_login(client, a))
    assert redis_for_tests.keys(prefix), "the counts went to Redis, under the prefix given"


async def test_an_unreachable_counter_store_lets_requests_through_and_says_so_once(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis down must not become sign-in down: the limits lapse, logged once, not per request
    (the lockout in the database and the bounded password threads still hold)."""
    settings = stack.settings.model_copy(
        update={"rate_limit_storage": "redis://127.0.0.1:9/0", "rate_limit_token_per_ip": "1/hour"}
    )
    limits = RateLimits(settings, b"k" * 32)
    with caplog.at_level(logging.WARNING):
        answers = [await limits.hit(limits.rules.token_per_ip, "198.51.100.9") for _ in range(3)]
    assert answers == [None, None, None]
    assert len([r for r in caplog.records if "rate-limit storage unreachable" in r.message]) == 1


async def test_rate_limits_lapsing_is_told_by_readyz_and_metrics_not_only_a_log_line(
    stack: Stack,
) -> None:
    """The pod stays ready (Redis is shared: every pod would go unready at once), and says
    what lapsed; the next count that reaches the storage says it again."""
    kept = stack.ctx.rate_limits
    unreachable = stack.settings.model_copy(update={"rate_limit_storage": "redis://127.0.0.1:9/0"})
    stack.ctx.rate_limits = RateLimits(unreachable, b"k" * 32)
    try:
        async with AsyncClient() as client:
            refused = await client.post(
                f"{stack.broker}/api/v1/auth/token",
                data={"grant_type": "refresh_token", "refresh_token": "not-a-token"},
            )
            ready = await client.get(f"{stack.broker}/readyz")
            scraped = (await client.get(f"{stack.broker}/metrics")).text
    finally:
        stack.ctx.rate_limits = kept
    assert refused.status_code == 400  # answered, unlimited
    assert ready.status_code == 200
    assert ready.json()["rate_limits"] == "not enforced"
    assert gauge(scraped, "vssid_rate_limits_enforced") == 0
    assert gauge(scraped, "vssid_dependency_up", dependency="redis") == 0

    # Back: a count that reaches the storage enforces again.
    await kept.hit(kept.rules.token_per_ip, "198.51.100.10")
    kept.enforced = False  # as if this process had seen the outage too
    await kept.hit(kept.rules.token_per_ip, "198.51.100.10")
    async with AsyncClient() as client:
        assert (await client.get(f"{stack.broker}/readyz")).json()["rate_limits"] == "enforced"
        scraped = (await client.get(f"{stack.broker}/metrics")).text
    assert gauge(scraped, "vssid_rate_limits_enforced") == 1


def gauge(exposition: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return sample.value
    raise AssertionError(f"{name}{labels} not exported")
