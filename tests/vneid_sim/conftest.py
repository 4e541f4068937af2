"""One simulator (test mode) served over real HTTP for the whole test run, plus helpers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from joserfc.jwk import RSAKey

from tests.support.http import AsyncClient
from tests.support.live_server import free_port, live_server
from vssid_broker.vneid_sim.app import create_app
from vssid_broker.vneid_sim.config import (
    ClientRegistration,
    SimSettings,
    demo_app_client,
    demo_client,
)
from vssid_broker.vneid_sim.state import SimState

RP_SIGNING_KEY = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
RP_JWKS_URI = "https://rp.example/jwks"
RP_BACKCHANNEL_URI = "https://rp.example/backchannel-logout"
RP_FRONTCHANNEL_URI = "https://rp.example/frontchannel-logout?from=vneid"

PRIVATE_KEY_JWT_CLIENT = ClientRegistration(
    client_id="rp-private-key-jwt",
    client_name="RP thử nghiệm (private_key_jwt)",
    redirect_uris=["http://127.0.0.1/callback"],
    token_endpoint_auth_methods=["private_key_jwt"],
    jwks={"keys": [RP_SIGNING_KEY.as_dict(private=False)]},
    backchannel_logout_uri=RP_BACKCHANNEL_URI,
    frontchannel_logout_uri=RP_FRONTCHANNEL_URI,
    post_logout_redirect_uris=["http://127.0.0.1/signed-out"],
)
JWKS_URI_CLIENT = ClientRegistration(
    client_id="rp-jwks-uri",
    redirect_uris=["http://127.0.0.1/callback"],
    token_endpoint_auth_methods=["private_key_jwt"],
    jwks_uri=RP_JWKS_URI,
)


@dataclass
class Sim:
    base_url: str
    state: SimState
    backchannel_posts: list[httpx.Request] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture(scope="session")
def sim() -> Iterator[Sim]:
    port = free_port()
    backchannel_posts: list[httpx.Request] = []

    def relying_party(request: httpx.Request) -> httpx.Response:
        # Stands in for the relying parties the simulator calls back.
        if str(request.url) == RP_JWKS_URI:
            return httpx.Response(200, json={"keys": [RP_SIGNING_KEY.as_dict(private=False)]})
        if str(request.url) == RP_BACKCHANNEL_URI:
            backchannel_posts.append(request)
            return httpx.Response(200)
        return httpx.Response(404)

    settings = SimSettings(
        issuer=f"http://127.0.0.1:{port}",
        test_mode=True,
        clients=[demo_client(), demo_app_client(), PRIVATE_KEY_JWT_CLIENT, JWKS_URI_CLIENT],
    )
    app = create_app(settings, outbound_transport=httpx.MockTransport(relying_party))
    with live_server(app, port) as base_url:
        yield Sim(base_url, app.state.sim, backchannel_posts)


@pytest.fixture(autouse=True)
def _fresh_sim_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Undo what a test changed: pending faults, the clock, locked citizens."""
    if "sim" not in request.fixturenames:
        yield
        return
    sim: Sim = request.getfixturevalue("sim")
    citizens = dict(sim.state.citizens)
    yield
    sim.state.faults.clear()
    sim.state.now = time.time
    sim.state.citizens.clear()
    sim.state.citizens.update(citizens)
    sim.backchannel_posts.clear()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncClient(timeout=10) as client:
        yield client
