"""Bad input is refused at the edge with a clear 4xx problem and changes nothing: oversized
bodies, deeply nested JSON, NUL characters, values the database cannot hold."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.admin.test_admin_api import API, Staff, staff
from tests.conftest import Stack
from tests.support.dpop import AppDpopKey
from tests.support.http import AsyncClient
from vssid_broker.audit.models import AuditEvent
from vssid_broker.federation.models import LoginTransaction

__all__ = ["staff"]  # the fixture, used by name below


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def test_a_body_larger_than_the_cap_is_refused_unread(stack: Stack) -> None:
    big = {"identifier": "0112345678", "password": "x" * (stack.settings.max_body_bytes + 1)}
    async with AsyncClient() as client:
        response = await client.post(f"{stack.broker}/api/v1/auth/password", json=big)
    assert_problem(response, 413, "payload_too_large")
    assert response.headers["x-request-id"]
    assert await stack.count(AuditEvent) == 0


async def test_a_body_without_a_length_is_cut_off_at_the_cap(stack: Stack) -> None:
    # Chunked, so no Content-Length announces it: a little over the cap, in 1 KiB chunks.
    chunks = b"".join(b"400\r\n" + b"a" * 1024 + b"\r\n" for _ in range(20)) + b"0\r\n\r\n"
    host, port = stack.broker.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /api/v1/auth/token HTTP/1.1\r\nHost: broker\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunks
    )
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 413"), status_line


@pytest.mark.parametrize("path", ["/api/v1/auth/token", "/api/v1/auth/revoke"])
async def test_deeply_nested_json_is_a_400(stack: Stack, path: str) -> None:
    nested = "[" * 5000 + "]" * 5000
    async with AsyncClient() as client:
        response = await client.post(
            f"{stack.broker}{path}",
            content=f'{{"token": {nested}}}',
            headers={"Content-Type": "application/json"},
        )
    assert_problem(response, 400, "invalid_request")


async def test_brackets_inside_strings_are_not_nesting(stack: Stack) -> None:
    async with AsyncClient() as client:
        response = await client.post(
            f"{stack.broker}/api/v1/auth/revoke", json={"token": "[" * 100 + "{" * 100}
        )
    assert response.status_code == 200


@pytest.mark.parametrize("identifier", ["0112345678\x00", "\x00"])
async def test_a_nul_in_an_identifier_is_refused_and_nothing_is_recorded(
    stack: Stack, identifier: str
) -> None:
    async with AsyncClient() as client:
        response = await client.post(
            f"{stack.broker}/api/v1/auth/password",
            json={"identifier": identifier, "password": "doan-sai"},
        )
    assert_problem(response, 400, "invalid_request")
    assert await stack.count(AuditEvent) == 0


async def test_a_nul_in_a_form_is_refused(stack: Stack) -> None:
    async with AsyncClient() as client:
        response = await client.post(
            f"{stack.broker}/api/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": "abc\x00def"},
        )
    assert_problem(response, 400, "invalid_request")


@pytest.mark.parametrize("return_to", ["/" + "a" * 600, "/account\x00x"])
async def test_an_unusable_return_to_is_a_readable_refusal(stack: Stack, return_to: str) -> None:
    async with AsyncClient() as browser:
        response = await browser.get(
            f"{stack.broker}/auth/vneid/login", params={"return_to": return_to}
        )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"].startswith("text/html")
    assert "Yêu cầu" in response.text
    assert await stack.count(LoginTransaction) == 0


async def test_a_nul_in_a_dpop_jti_is_an_invalid_proof(stack: Stack) -> None:
    key = AppDpopKey()
    url = f"{stack.settings.public_base_url}/api/v1/auth/token"
    async with AsyncClient() as app:
        response = await app.post(
            f"{stack.broker}/api/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": "unknown"},
            headers={"DPoP": key.proof("POST", url, jti="abc\x00")},
        )
    assert_problem(response, 400, "invalid_dpop_proof")


async def test_a_nul_in_a_staff_username_is_refused(stack: Stack) -> None:
    async with AsyncClient() as client:
        response = await client.post(
            f"{stack.broker}{API}/token", json={"username": "admin\x00", "password": "x" * 12}
        )
    assert_problem(response, 400, "invalid_request")
    assert await stack.count(AuditEvent) == 0


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/audit", {"since": "2026-01-01T00:00:00"}),
        ("/audit", {"until": "2026-01-01T00:00:00"}),
        ("/audit", {"case_id": str(2**70)}),
        ("/audit", {"case_id": str(2**63 - 2)}),  # past what the audit query reads (PostgreSQL)
        ("/audit", {"account_id": "-1"}),
        ("/audit", {"offset": str(2**64)}),
        ("/cases", {"min_age_hours": str(10**12)}),
        (f"/cases/{2**64}", {}),
        (f"/accounts/{2**64}/identities", {}),
    ],
)
async def test_values_the_database_cannot_hold_are_a_422(
    staff: Staff, path: str, params: dict[str, str]
) -> None:
    assert_problem(await staff.get(staff.admin, path, **params), 422, "invalid_request")


async def test_times_with_a_zone_are_accepted(staff: Staff) -> None:
    response = await staff.get(staff.admin, "/audit", since="2026-01-01T00:00:00+07:00")
    assert response.status_code == 200, response.text


async def test_a_case_approval_with_an_impossible_version_is_a_422(staff: Staff) -> None:
    response = await staff.post(
        staff.reviewer, "/cases/1/approve", {"account_id": 1, "version": 2**40}
    )
    assert_problem(response, 422, "invalid_request")


@pytest.mark.parametrize("path", ["/api/v1/me", "/account", "/healthz"])
async def test_header_fields_larger_than_the_cap_are_refused_431(stack: Stack, path: str) -> None:
    """A 1 MB cookie is not read by any route: 431 (RFC 6585 §5), problem+json for the API
    (pages get the Vietnamese error page)."""
    huge = {"Cookie": "vssid_session=" + "a" * (1024 * 1024)}
    async with AsyncClient() as client:
        refused = await client.get(f"{stack.broker}{path}", headers=huge)
        just_under = await client.get(
            f"{stack.broker}/healthz",
            headers={"Cookie": "x=" + "a" * (stack.settings.max_header_bytes // 2)},
        )
    assert refused.status_code == 431
    assert "headers_too_large" in refused.text
    if path.startswith("/api/"):
        assert_problem(refused, 431, "headers_too_large")
    assert refused.headers["x-request-id"]
    assert just_under.status_code == 200
