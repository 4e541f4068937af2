"""Two broker processes, one PostgreSQL: each remembers live sessions (its live-session cache),
and a session ended on one process is refused by the other at once, however warm its cache.

"At once" means the next request, sent the moment the ending request was answered: no sleep,
no retry. The loops give a race between the notification and that request many chances to show.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GENEROUS_RATE_LIMITS, Stack
from tests.support.database import postgresql_only
from tests.support.flows import app_complete, app_until_redirect
from tests.support.http import AsyncClient
from tests.support.live_server import free_port
from tests.support.staff import PASSWORD, add_staff, code_now
from tests.test_cli import running, serve_env
from vssid_broker.admin.models import StaffRole

AN = "001085012345"
NO_CACHE_ON_SQLITE = "LISTEN/NOTIFY (SQLite keeps no cache)"
ROUNDS = 30


@contextmanager
def two_processes(stack: Stack, tmp_path: Path) -> Iterator[tuple[str, str]]:
    postgresql_only(stack.settings.database_url, NO_CACHE_ON_SQLITE)
    port_a, port_b = free_port(), free_port()
    limits = {f"VSSID_{name.upper()}": value for name, value in GENEROUS_RATE_LIMITS.items()}
    env = serve_env(stack, tmp_path, public_port=port_a, **limits)
    a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    with (
        running("serve", "--port", str(port_a), env=env, cwd=tmp_path, ready_url=f"{a}/readyz"),
        running("serve", "--port", str(port_b), env=env, cwd=tmp_path, ready_url=f"{b}/readyz"),
    ):
        yield a, b


async def sign_in_app(client: httpx.AsyncClient, broker: str) -> dict[str, str]:
    done = await app_complete(client, broker, await app_until_redirect(client, broker, AN))
    assert done.status_code == 200, done.text
    tokens: dict[str, str] = done.json()
    return tokens


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def claim_of(tokens: dict[str, str], name: str) -> str:
    """A claim of the app's access token, read as the app may (it is the broker's to check)."""
    payload = tokens["access_token"].split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))[name])


async def cache_hits(client: httpx.AsyncClient, broker: str) -> float:
    scraped = (await client.get(f"{broker}/metrics")).text
    for family in text_string_to_metric_families(scraped):
        for sample in family.samples:
            if sample.name == "vssid_session_cache_lookups_total" and sample.labels == {
                "outcome": "hit"
            }:
                return sample.value
    return 0.0


async def warm(client: httpx.AsyncClient, broker: str, tokens: dict[str, str]) -> None:
    """Two calls: the first asks the database, the second is answered from memory."""
    for _ in range(2):
        me = await client.get(f"{broker}/api/v1/me", headers=bearer(tokens))
        assert me.status_code == 200, me.text


async def test_an_app_session_ended_on_one_process_is_refused_at_once_on_the_other(
    stack: Stack, tmp_path: Path
) -> None:
    with two_processes(stack, tmp_path) as (a, b):
        async with AsyncClient(timeout=10) as client:
            hits_before = await cache_hits(client, a)
            for round_ in range(ROUNDS):
                tokens = await sign_in_app(client, b)
                await warm(client, a, tokens)
                # The three ways a person ends an app session, in turn, all at process B.
                if round_ % 3 == 0:
                    ended = await client.post(
                        f"{b}/api/v1/auth/revoke", data={"token": tokens["refresh_token"]}
                    )
                    assert ended.status_code == 200, ended.text
                else:
                    one = f"/{claim_of(tokens, 'sid')}" if round_ % 3 == 1 else ""
                    ended = await client.delete(
                        f"{b}/api/v1/me/sessions{one}", headers=bearer(tokens)
                    )
                    assert ended.status_code == 204, ended.text
                me = await client.get(f"{a}/api/v1/me", headers=bearer(tokens))
                assert me.status_code == 401, f"round {round_}: {me.status_code} {me.text}"
            # The refusals were not for want of a cache: A answered every second call from it.
            assert await cache_hits(client, a) - hits_before >= ROUNDS


async def test_staff_locking_an_account_ends_its_access_at_once_on_the_other_process(
    stack: Stack, tmp_path: Path
) -> None:
    await add_staff(stack, "khoa", StaffRole.REVIEWER)
    with two_processes(stack, tmp_path) as (a, b):
        async with AsyncClient(timeout=10) as client:
            signed_in = await client.post(
                f"{b}/admin/api/v1/token",
                json={"username": "khoa", "password": PASSWORD, "otp": code_now(stack)},
            )
            assert signed_in.status_code == 200, signed_in.text
            staff = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
            tokens = await sign_in_app(client, b)
            await warm(client, a, tokens)
            locked = await client.post(
                f"{b}/admin/api/v1/people/{claim_of(tokens, 'sub')}/lock",
                headers=staff,
                json={"reason": "báo mất điện thoại"},
            )
            assert locked.status_code == 200, locked.text
            me = await client.get(f"{a}/api/v1/me", headers=bearer(tokens))
            assert me.status_code == 401, me.text
