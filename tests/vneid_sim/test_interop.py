"""What a spec-minded provider does and the simulator now does too: scopes and consent decide
what is released, an essential `acr` is met or refused before consent, public native clients,
logout by GET only, and front-channel logout with `iss` and `sid`."""

from __future__ import annotations

import html
import json
import re

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT

from tests.support.http import AsyncClient
from tests.support.live_server import free_port, live_server
from tests.vneid_sim.conftest import (
    PRIVATE_KEY_JWT_CLIENT,
    RP_FRONTCHANNEL_URI,
    RP_SIGNING_KEY,
    Sim,
)
from tests.vneid_sim.flow import (
    AN,
    BINH,
    DEMO_APP_CLIENT_ID,
    REDIRECT_URI,
    authorization_url,
    code_for,
    pkce_pair,
    query,
    shown,
    tokens_for,
    unverified,
)
from tests.vneid_sim.test_oidc_client import run_code_flow
from vssid_broker.vneid_sim.app import create_app
from vssid_broker.vneid_sim.config import SimSettings, demo_app_client, demo_client
from vssid_broker.vneid_sim.driver import sign_in_at_vneid

ESSENTIAL_LOA2 = json.dumps({"id_token": {"acr": {"essential": True, "values": ["LoA2"]}}})
APP_REDIRECT_URI = "vn.gov.baohiemxahoi.vssid:/oauth/vneid"
IDENTITY = {"SoDinhDanh", "HoVaTen", "name", "birthdate", "NgayThangNamSinh", "gender"}


@pytest.mark.parametrize(
    ("scope", "released"),
    [
        ("openid", set()),
        ("openid profile", IDENTITY - {"SoDinhDanh"}),
        ("openid citizen_id", {"SoDinhDanh"}),
        ("openid profile citizen_id email", IDENTITY),
    ],
)
async def test_only_what_the_granted_scopes_cover_is_released(
    sim: Sim, http: httpx.AsyncClient, scope: str, released: set[str]
) -> None:
    tokens = await tokens_for(http, sim.base_url, scope=scope)
    _, claims = unverified(tokens["id_token"])
    assert IDENTITY & set(claims) == released
    # The unknown `email` is left out of the grant (RFC 6749 §3.3).
    assert "email" not in tokens["scope"].split()
    userinfo = await http.get(
        sim.url("/userinfo"), headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert set(userinfo.json()) - {"sub"} == released


async def test_the_consent_page_lists_only_what_is_shared(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    _, challenge = pkce_pair()
    login = await shown(
        http, await http.get(authorization_url(sim.base_url, challenge, scope="openid profile"))
    )
    login_id = re.search(r'name="login_id" value="([^"]+)"', login.text)
    assert login_id
    otp = await shown(
        http,
        await http.post(
            sim.url("/login"),
            data={"login_id": login_id.group(1), "so_dinh_danh": AN, "mat_khau": "Vneid@123"},
        ),
    )
    consent = await shown(
        http,
        await http.post(sim.url("/otp"), data={"login_id": login_id.group(1), "otp": "123456"}),
    )
    assert otp.status_code == consent.status_code == 200
    assert "Họ và tên" in consent.text and "Ngày sinh" in consent.text
    assert "Số định danh cá nhân" not in consent.text and AN not in consent.text


async def test_an_essential_acr_a_level_one_person_cannot_meet_is_refused_before_consent(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    _, challenge = pkce_pair()
    url = authorization_url(sim.base_url, challenge, claims=ESSENTIAL_LOA2)
    location = await sign_in_at_vneid(http, url, BINH)
    params = query(location)
    assert location.startswith(REDIRECT_URI)
    assert params["error"] == "unmet_authentication_requirements"
    assert "code" not in params and params["iss"] == sim.base_url
    assert not sim.state.codes or all(c.citizen_id != BINH for c in sim.state.codes.values())


async def test_an_essential_acr_within_reach_is_met(sim: Sim, http: httpx.AsyncClient) -> None:
    tokens = await tokens_for(http, sim.base_url, claims=ESSENTIAL_LOA2)
    assert unverified(tokens["id_token"])[1]["acr"] == "LoA2"
    # Without the essential claim the level-1 person still gets through, as LoA1.
    level_one = await tokens_for(http, sim.base_url, BINH)
    assert unverified(level_one["id_token"])[1]["acr"] == "LoA1"


@pytest.mark.parametrize("claims", ["{not json", '{"id_token": "acr"}'])
async def test_a_malformed_claims_parameter_is_invalid_request(
    sim: Sim, http: httpx.AsyncClient, claims: str
) -> None:
    _, challenge = pkce_pair()
    response = await shown(
        http, await http.get(authorization_url(sim.base_url, challenge, claims=claims))
    )
    assert response.status_code == 302
    assert query(response.headers["location"])["error"] == "invalid_request"


async def test_a_public_native_client_exchanges_with_pkce_and_its_client_id(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    code, verifier, _ = await code_for(
        http, sim.base_url, client_id=DEMO_APP_CLIENT_ID, redirect_uri=APP_REDIRECT_URI
    )
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": APP_REDIRECT_URI,
    }
    anonymous = await http.post(sim.url("/token"), data=body)
    assert anonymous.status_code == 401  # a code is never exchanged for nobody
    named = await http.post(sim.url("/token"), data=body | {"client_id": DEMO_APP_CLIENT_ID})
    assert named.status_code == 200, named.text
    assert unverified(named.json()["id_token"])[1]["aud"] == DEMO_APP_CLIENT_ID


async def test_rp_initiated_logout_shows_the_front_channel_frames_of_the_session(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    """Front-Channel Logout §2-3: the logged-out page loads the client's URI with iss and sid,
    then goes on to the post-logout redirect."""
    async with AsyncOAuth2Client(
        PRIVATE_KEY_JWT_CLIENT.client_id,
        RP_SIGNING_KEY.as_dict(private=True),
        scope="openid",
        code_challenge_method="S256",
        token_endpoint_auth_method=PrivateKeyJWT(sim.url("/token"), alg="RS256"),
    ) as client:
        token, _ = await run_code_flow(sim, http, client, "http://127.0.0.1:4711/callback", AN)
    id_token = token["id_token"]
    sid = unverified(id_token)[1]["sid"]
    page = await http.get(
        sim.url("/logout"),
        params={
            "id_token_hint": id_token,
            "post_logout_redirect_uri": "http://127.0.0.1/signed-out",
            "state": "s1",
        },
    )
    assert page.status_code == 200
    found = re.search(r'<iframe[^>]* src="([^"]+)"', page.text)
    assert found, page.text
    frame = httpx.URL(html.unescape(found.group(1)))
    assert str(frame).startswith(RP_FRONTCHANNEL_URI.split("?")[0])
    assert frame.params["from"] == "vneid"  # the registered URI's own query is kept
    assert frame.params["iss"] == sim.base_url and frame.params["sid"] == sid
    assert page.headers["refresh"] == "2; url=http://127.0.0.1/signed-out?state=s1"
    assert sid not in sim.state.sessions


async def test_a_provider_serving_logout_by_get_only_refuses_post() -> None:
    port = free_port()
    settings = SimSettings(
        issuer=f"http://127.0.0.1:{port}",
        clients=[demo_client(), demo_app_client()],
        end_session_methods=["GET"],
    )
    with live_server(create_app(settings), port) as base:
        async with AsyncClient() as http:
            by_post = await http.post(f"{base}/logout", data={"client_id": "vssid-broker"})
            by_get = await http.get(f"{base}/logout")
    assert by_post.status_code == 405 and by_post.headers["allow"] == "GET"
    assert by_get.status_code == 200 and "Bạn đã đăng xuất" in by_get.text


async def test_an_issuer_with_a_trailing_slash_is_kept_exactly() -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}/"
    settings = SimSettings(issuer=issuer, clients=[demo_client()])
    with live_server(create_app(settings), port) as base:
        async with AsyncClient() as http:
            metadata = (await http.get(f"{base}/.well-known/openid-configuration")).json()
    assert metadata["issuer"] == issuer
    assert metadata["token_endpoint"] == f"{issuer}token"  # no double slash
