"""The VNeID dialect profile end to end: a second simulated VNeID speaking the dialect (no ID
token; token and userinfo answers encrypted to the broker's RSA key) and a second broker set
to `VSSID_VNEID_PROTOCOL=vneid-encrypted`, both on real ports, same database as the suite.

Every login is driven over real HTTP, as the browser and the app drive it; every refusal is
checked for its stable code, its page or problem, one audit event and nothing else written.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from tests.conftest import Stack
from tests.support.flows import app_until_redirect, outcome_page
from tests.support.http import AsyncClient
from tests.support.live_server import free_port, live_server
from vssid_broker.app import create_app
from vssid_broker.audit.models import AuditEvent
from vssid_broker.config import DIALECT_CLAIM_DEFAULTS, Settings
from vssid_broker.federation.vneid_dialect import code_from_raw_query
from vssid_broker.linking.models import FederatedLink
from vssid_broker.sessions.models import BrowserSession, RefreshToken
from vssid_broker.vneid_sim.app import create_app as create_sim_app
from vssid_broker.vneid_sim.config import SimSettings, demo_app_client, demo_client
from vssid_broker.vneid_sim.driver import sign_in_at_vneid

LEVEL2_WITH_ACCOUNT = "001085012345"
LEVEL1 = "079190123456"


@dataclass
class Pair:
    """A broker and a simulated VNeID, both speaking the dialect."""

    broker: str
    sim: str
    stack: Stack

    async def fault(self, name: str, delay_seconds: float = 0) -> None:
        async with AsyncClient() as client:
            response = await client.post(
                f"{self.sim}/_test/faults",
                json={"fault": name, "times": 1, "delay_seconds": delay_seconds},
            )
            response.raise_for_status()


def rp_key_files(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = directory / "rp-key.pem"
    public = directory / "rp-key.pub.pem"
    # PKCS#1 ("BEGIN RSA PRIVATE KEY"), the older of the two forms the setting takes.
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


@contextlib.contextmanager
def dialect_pair(
    base: Settings, directory: Path, cipher: str, encrypt: bool
) -> Iterator[tuple[str, str]]:
    private, public = rp_key_files(directory)
    sim_port, broker_port = free_port(), free_port()
    sim = f"http://127.0.0.1:{sim_port}"
    sim_settings = SimSettings(
        issuer=sim,
        test_mode=True,
        clients=[demo_client(), demo_app_client()],
        protocol="vneid-encrypted",
        answer_cipher=cipher,
        encrypt_answers=encrypt,
        rp_public_key_file=public,
    )
    # The dialect's claim names come from their defaults: nothing about them is configured.
    inherited = {k: v for k, v in base.model_dump().items() if k not in DIALECT_CLAIM_DEFAULTS}
    del inherited["vneid_subject_claim"]
    settings = Settings(
        **inherited
        | {
            "public_base_url": f"http://127.0.0.1:{broker_port}",
            "vneid_issuer": sim,
            "vneid_protocol": "vneid-encrypted",
            "vneid_authorization_endpoint": f"{sim}/authorize",
            "vneid_token_endpoint": f"{sim}/token",
            "vneid_userinfo_endpoint": f"{sim}/userinfo",
            "vneid_end_session_endpoint": f"{sim}/logout",
            "vneid_response_cipher": cipher,
            "vneid_decryption_key_files": [str(private)],
        }
    )
    with (
        live_server(create_sim_app(sim_settings), sim_port),
        live_server(create_app(settings), broker_port),
    ):
        yield f"http://127.0.0.1:{broker_port}", sim


@pytest.fixture(scope="module")
def ecb_servers(
    broker_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    with dialect_pair(broker_settings, tmp_path_factory.mktemp("ecb"), "aes-ecb", True) as urls:
        yield urls


@pytest.fixture(scope="module")
def cbc_servers(
    broker_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    with dialect_pair(broker_settings, tmp_path_factory.mktemp("cbc"), "aes-cbc", True) as urls:
        yield urls


async def paired(stack: Stack, servers: tuple[str, str]) -> Pair:
    broker, sim = servers
    async with AsyncClient() as client:
        await client.delete(f"{sim}/_test/faults")
    return Pair(broker, sim, stack)


@pytest.fixture
async def ecb(stack: Stack, ecb_servers: tuple[str, str]) -> AsyncIterator[Pair]:
    yield await paired(stack, ecb_servers)


@pytest.fixture
async def cbc(stack: Stack, cbc_servers: tuple[str, str]) -> AsyncIterator[Pair]:
    yield await paired(stack, cbc_servers)


@pytest.fixture(params=["ecb", "cbc"])
def pair(request: pytest.FixtureRequest) -> Pair:
    chosen: Pair = request.getfixturevalue(request.param)
    return chosen


# --- the two flows, as the browser and the app drive them ---------------------------------------
async def browser_login(
    browser: httpx.AsyncClient, pair: Pair, citizen: str = LEVEL2_WITH_ACCOUNT
) -> tuple[str, httpx.Response]:
    """The callback URL VNeID sent the browser to, and what the broker answered there."""
    start = await browser.get(f"{pair.broker}/auth/vneid/login")
    assert start.status_code == 302, start.text
    callback_url = await sign_in_at_vneid(browser, start.headers["location"], citizen)
    return callback_url, await browser.get(callback_url)


async def app_login(
    app: httpx.AsyncClient, pair: Pair, citizen: str = LEVEL2_WITH_ACCOUNT, **overrides: str
) -> tuple[str, httpx.Response]:
    """The app's redirect URL, and the broker's answer to completing with what it carried
    (the code read from the raw query, as the app must, so a "+" stays a "+")."""
    redirect = await app_until_redirect(app, pair.broker, citizen)
    code, encrypt_key = code_from_raw_query(urlsplit(redirect.location).query)
    body = {
        "code": code or "",
        "state": redirect.params["state"],
        "code_verifier": redirect.pkce.verifier,
        **({"encrypt_key": encrypt_key} if encrypt_key else {}),
        **overrides,
    }
    answer = await app.post(f"{pair.broker}/api/v1/auth/vneid/complete", json=body)
    return redirect.location, answer


async def assert_signed_in_by_browser(
    pair: Pair, browser: httpx.AsyncClient, answer: httpx.Response
) -> None:
    assert answer.status_code == 302, answer.text[:300]
    assert "vssid_session=" in answer.headers.get("set-cookie", "")
    page = await browser.get(f"{pair.broker}/account")
    assert page.status_code == 200, page.text[:300]
    assert "Nguyễn Văn An" in page.text
    assert "0112345678" in page.text
    assert await pair.stack.count(FederatedLink) == 1
    assert await pair.stack.count(BrowserSession) == 1


async def assert_signed_in_by_app(
    pair: Pair, app: httpx.AsyncClient, answer: httpx.Response
) -> None:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["linked_now"] is True
    assert body["account"]["bhxh_code"] == "0112345678"
    me = await app.get(
        f"{pair.broker}/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["citizen_id"] == LEVEL2_WITH_ACCOUNT
    assert await pair.stack.count(FederatedLink) == 1
    assert await pair.stack.count(RefreshToken) == 1


# --- sign-ins -----------------------------------------------------------------------------------
async def test_browser_signs_in_a_level2_citizen_with_encrypted_answers(pair: Pair) -> None:
    async with AsyncClient() as browser:
        callback_url, answer = await browser_login(browser, pair)
        assert "iss=" not in callback_url  # the dialect sends no iss: nothing to compare
        await assert_signed_in_by_browser(pair, browser, answer)


async def test_app_signs_in_a_level2_citizen_with_encrypted_answers(pair: Pair) -> None:
    async with AsyncClient() as app:
        _location, answer = await app_login(app, pair)
        await assert_signed_in_by_app(pair, app, answer)


async def test_plaintext_answers_are_accepted_too(ecb: Pair) -> None:
    # Both the token answer and the userinfo answer plain (the integration handles both).
    await ecb.fault("dialect_plaintext")
    await ecb.fault("dialect_plaintext")
    async with AsyncClient() as browser:
        _url, answer = await browser_login(browser, ecb)
        await assert_signed_in_by_browser(ecb, browser, answer)


CODE_FAULTS = pytest.mark.parametrize(
    ("fault", "sign"),
    [
        # Unescaped in the query: a form decoder would turn it into a space.
        ("dialect_plus_in_code", "+"),
        # The code encrypted; its AES key wrapped with the broker's RSA key beside it.
        ("dialect_encrypted_code", "encrypt_key="),
    ],
)


@CODE_FAULTS
async def test_codes_as_the_dialect_sends_them_in_the_browser_flow(
    pair: Pair, fault: str, sign: str
) -> None:
    await pair.fault(fault)
    async with AsyncClient() as browser:
        callback_url, answer = await browser_login(browser, pair)
        assert sign in urlsplit(callback_url).query
        await assert_signed_in_by_browser(pair, browser, answer)


@CODE_FAULTS
async def test_codes_as_the_dialect_sends_them_in_the_app_flow(
    pair: Pair, fault: str, sign: str
) -> None:
    await pair.fault(fault)
    async with AsyncClient() as app:
        location, answer = await app_login(app, pair)
        assert sign in urlsplit(location).query
        await assert_signed_in_by_app(pair, app, answer)


# --- refusals -----------------------------------------------------------------------------------
async def assert_nothing_written(pair: Pair, code: str) -> None:
    assert await pair.stack.count(FederatedLink) == 0
    assert await pair.stack.count(BrowserSession) == 0
    assert await pair.stack.count(RefreshToken) == 0
    async with pair.stack.db() as session:
        outcomes = list(
            await session.scalars(
                select(AuditEvent.outcome).where(AuditEvent.event_type == "login")
            )
        )
    assert outcomes == [code]  # one audit event, naming the refusal


async def assert_browser_refused(
    pair: Pair, browser: httpx.AsyncClient, answer: httpx.Response, codes: set[str], status: int
) -> str:
    page = await outcome_page(browser, answer)
    assert page.status_code == status, page.text[:300]
    assert page.headers["content-type"].startswith("text/html")
    assert "vssid_session=" not in answer.headers.get("set-cookie", "")
    shown = [code for code in codes if f'<code id="error-code">{code}</code>' in page.text]
    assert shown, page.text[:800]
    assert "Traceback" not in page.text
    await assert_nothing_written(pair, shown[0])
    return page.text


@pytest.mark.parametrize(
    ("faults", "codes", "status"),
    [
        (["dialect_level_1"], {"vneid_level_insufficient"}, 403),
        (["dialect_level_missing"], {"vneid_level_missing"}, 403),
        # A wrong RSA key: PKCS#1 v1.5 implicit rejection hands back random bytes, which pass
        # as an AES key about once in 80; that one ends garbled (docs/provider-profiles.md).
        (["dialect_foreign_key"], {"vneid_answer_key_unknown", "vneid_answer_garbled"}, 502),
        (["dialect_garbled_data"], {"vneid_answer_garbled"}, 502),
        # ECB data read as CBC (or the reverse): the padding fails, or rarely the JSON.
        (["dialect_other_mode"], {"vneid_answer_garbled", "vneid_answer_not_json"}, 502),
        (["userinfo_http_500"], {"vneid_unavailable"}, 503),
    ],
)
async def test_browser_refusals(ecb: Pair, faults: list[str], codes: set[str], status: int) -> None:
    for fault in faults:
        await ecb.fault(fault)
    async with AsyncClient() as browser:
        _url, answer = await browser_login(browser, ecb)
        await assert_browser_refused(ecb, browser, answer, codes, status)


async def test_a_level1_citizen_is_refused_with_a_vietnamese_page(cbc: Pair) -> None:
    async with AsyncClient() as browser:
        _url, answer = await browser_login(browser, cbc, LEVEL1)
        text = await assert_browser_refused(cbc, browser, answer, {"vneid_level_insufficient"}, 403)
    assert "mức độ 2" in text


async def test_a_slow_userinfo_is_refused_as_unavailable(ecb: Pair) -> None:
    # The suite's broker waits 1.5 s for VNeID.
    await ecb.fault("userinfo_slow", delay_seconds=3)
    async with AsyncClient() as browser:
        _url, answer = await browser_login(browser, ecb)
        await assert_browser_refused(ecb, browser, answer, {"vneid_unavailable"}, 503)


@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [
        ("dialect_level_1", "vneid_level_insufficient", 403),
        ("dialect_level_missing", "vneid_level_missing", 403),
        ("dialect_foreign_key", "vneid_answer_key_unknown", 502),
        ("dialect_garbled_data", "vneid_answer_garbled", 502),
    ],
)
async def test_app_refusals(cbc: Pair, fault: str, code: str, status: int) -> None:
    await cbc.fault(fault)
    async with AsyncClient() as app:
        _location, answer = await app_login(app, cbc)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    given = answer.json()["code"]
    # See the browser's wrong-key case: once in about 80, a wrong key ends garbled.
    assert given == code or (code, given) == ("vneid_answer_key_unknown", "vneid_answer_garbled")
    await assert_nothing_written(cbc, given)


async def test_an_encrypted_code_that_does_not_decrypt_is_refused(ecb: Pair) -> None:
    async with AsyncClient() as app:
        _location, answer = await app_login(
            app, ecb, encrypt_key=base64.b64encode(b"not a wrapped key").decode()
        )
    assert answer.status_code == 502
    assert answer.json()["code"] == "vneid_code_undecryptable"
    await assert_nothing_written(ecb, "vneid_code_undecryptable")
