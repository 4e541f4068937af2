"""The login, OTP and consent pages, driven with plain HTTP."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.http import Client
from tests.vneid_sim.conftest import Sim
from tests.vneid_sim.flow import (
    AN,
    BINH,
    GIANG,
    REDIRECT_URI,
    authorization_url,
    pkce_pair,
    query,
    shown,
)
from vssid_broker.vneid_sim.driver import SimSignInError, sign_in_at_vneid, sign_in_at_vneid_sync


def login_id_of(html: str) -> str:
    match = re.search(r'name="login_id" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


async def first_login_page_posted(
    sim: Sim, http: httpx.AsyncClient, challenge: str, citizen_id: str
) -> httpx.Response:
    """A new login, its passcode form sent for `citizen_id`: the page that follows."""
    page = await shown(http, await http.get(authorization_url(sim.base_url, challenge)))
    data = {"login_id": login_id_of(page.text), "so_dinh_danh": citizen_id, "mat_khau": "Vneid@123"}
    return await shown(http, await http.post(sim.url("/login"), data=data))


async def test_each_page_step(sim: Sim, http: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    page = await shown(
        http, await http.get(authorization_url(sim.base_url, challenge, login_hint=AN, state="s1"))
    )
    assert page.status_code == 200
    assert 'data-step="login"' in page.text
    assert 'lang="vi"' in page.text
    assert "Vũ Thị Giang" in page.text  # the test citizens are listed
    assert f'value="{AN}"' in page.text  # login_hint pre-fills the ID field
    login_id = login_id_of(page.text)

    otp_page = await shown(
        http,
        await http.post(
            sim.url("/login"),
            data={"login_id": login_id, "so_dinh_danh": AN, "mat_khau": "Vneid@123"},
        ),
    )
    assert 'data-step="otp"' in otp_page.text
    assert "091*****78" in otp_page.text  # masked phone the code was "sent" to

    consent_page = await shown(
        http, await http.post(sim.url("/otp"), data={"login_id": login_id, "otp": "123456"})
    )
    assert 'data-step="consent"' in consent_page.text
    for label in ("Số định danh cá nhân", "Họ và tên", "Ngày sinh", "Giới tính", "Đồng ý", "Huỷ"):
        assert label in consent_page.text

    done = await shown(
        http,
        await http.post(sim.url("/consent"), data={"login_id": login_id, "quyet_dinh": "dong_y"}),
    )
    assert done.status_code == 303
    location = done.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    params = query(location)
    assert params["state"] == "s1" and params["iss"] == sim.base_url and params["code"]

    # The login transaction is single use.
    again = await shown(
        http,
        await http.post(sim.url("/consent"), data={"login_id": login_id, "quyet_dinh": "dong_y"}),
    )
    assert 'data-step="error"' in again.text
    # Back to the page of a login that ended: it says so, it does not offer to sign in again.
    back = await http.get(sim.url("/login"), params={"login_id": login_id})
    assert back.status_code == 200 and 'data-step="finished"' in back.text
    assert "Lần đăng nhập này đã kết thúc" in back.text


async def test_cancel_at_consent_returns_access_denied(sim: Sim, http: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    location = await sign_in_at_vneid(
        http, authorization_url(sim.base_url, challenge, state="xyz"), AN, consent=False
    )
    params = query(location)
    assert params["error"] == "access_denied"
    assert params["state"] == "xyz" and params["iss"] == sim.base_url


async def test_locked_citizen_sees_the_locked_page(sim: Sim, http: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    locked = await first_login_page_posted(sim, http, challenge, GIANG)
    assert locked.status_code == 403
    assert "Tài khoản định danh điện tử đã bị khoá" in locked.text
    # The driver presses "return to the app", which reports access_denied.
    location = await sign_in_at_vneid(http, authorization_url(sim.base_url, challenge), GIANG)
    assert query(location)["error"] == "access_denied"
    assert "khoá" in query(location)["error_description"]


async def test_level_one_citizen_has_no_otp_step(sim: Sim, http: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    response = await first_login_page_posted(sim, http, challenge, BINH)
    assert 'data-step="consent"' in response.text


async def test_wrong_passcode_shows_the_login_page_again(sim: Sim, http: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    page = await shown(http, await http.get(authorization_url(sim.base_url, challenge)))
    login_id = login_id_of(page.text)
    retry = await shown(
        http,
        await http.post(
            sim.url("/login"), data={"login_id": login_id, "so_dinh_danh": AN, "mat_khau": "sai"}
        ),
    )
    assert 'data-step="login"' in retry.text
    assert "không đúng" in retry.text
    # The same login can still succeed afterwards.
    ok = await shown(
        http,
        await http.post(
            sim.url("/login"),
            data={"login_id": login_id, "so_dinh_danh": AN, "mat_khau": "Vneid@123"},
        ),
    )
    assert 'data-step="otp"' in ok.text
    with pytest.raises(SimSignInError) as raised:
        await sign_in_at_vneid(http, authorization_url(sim.base_url, challenge), AN, passcode="x")
    assert raised.value.step == "login"


async def test_wrong_otp_is_refused_and_three_strikes_end_the_login(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    _, challenge = pkce_pair()
    with pytest.raises(SimSignInError) as raised:
        await sign_in_at_vneid(http, authorization_url(sim.base_url, challenge), AN, otp="000000")
    assert raised.value.step == "otp" and "OTP" in raised.value.message

    page = await shown(http, await http.get(authorization_url(sim.base_url, challenge, state="o")))
    login_id = login_id_of(page.text)
    await shown(
        http,
        await http.post(
            sim.url("/login"),
            data={"login_id": login_id, "so_dinh_danh": AN, "mat_khau": "Vneid@123"},
        ),
    )
    for _ in range(2):
        retry = await shown(
            http, await http.post(sim.url("/otp"), data={"login_id": login_id, "otp": "000000"})
        )
        assert 'data-step="otp"' in retry.text
    last = await shown(
        http, await http.post(sim.url("/otp"), data={"login_id": login_id, "otp": "000000"})
    )
    assert last.status_code == 303
    assert query(last.headers["location"])["error"] == "access_denied"


async def test_unknown_login_id_shows_an_error_page(sim: Sim, http: httpx.AsyncClient) -> None:
    response = await shown(
        http,
        await http.post(
            sim.url("/login"),
            data={"login_id": "nope", "so_dinh_danh": AN, "mat_khau": "Vneid@123"},
        ),
    )
    assert response.status_code == 400
    assert 'data-step="error"' in response.text


async def test_cancel_on_the_login_page(sim: Sim, http: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    page = await shown(http, await http.get(authorization_url(sim.base_url, challenge, state="c")))
    response = await shown(
        http, await http.post(sim.url("/cancel"), data={"login_id": login_id_of(page.text)})
    )
    assert response.status_code == 303
    assert query(response.headers["location"]) == {
        "error": "access_denied",
        "error_description": "Người dùng đã huỷ đăng nhập.",
        "state": "c",
        "iss": sim.base_url,
    }


def test_sync_driver(sim: Sim) -> None:
    _, challenge = pkce_pair()
    with Client() as client:
        location = sign_in_at_vneid_sync(client, authorization_url(sim.base_url, challenge), AN)
    assert "code" in query(location)
