"""The relying party against a provider configured only through settings, over real HTTP.

Each test gets its own simulated VNeID and broker (sharing the suite's database), because
these tests rotate keys, change discovery or switch the client-authentication method.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tests.conftest import Stack
from tests.e2e.test_callback_refusals import assert_refused, start_and_sign_in
from tests.support.flows import (
    APP_REDIRECT_URI,
    app_complete,
    app_until_redirect,
    browser_login,
    outcome_page,
)
from tests.support.http import AsyncClient
from tests.support.live_server import free_port, live_server
from vssid_broker.app import create_app
from vssid_broker.errors.login import ProviderMisconfigured
from vssid_broker.federation.provider import ProviderClient
from vssid_broker.linking.models import FederatedLink
from vssid_broker.vneid_sim.app import create_app as create_sim_app
from vssid_broker.vneid_sim.config import ClientRegistration, SimSettings

PKJWT_CLIENT = "vssid-broker-pkjwt"
APP_CLIENT = "vssid-broker-app"
APP_PKJWT_CLIENT = "vssid-broker-app-pkjwt"

StackFactory = Callable[..., contextlib.AbstractContextManager[Stack]]


@pytest.fixture
async def own_stack(stack: Stack) -> AsyncIterator[StackFactory]:
    """Start a private simulator + broker pair with the given broker settings; `sim` changes
    the simulator's settings, `web_client` the broker's web registration there (a `{broker}`
    in a value is the broker's URL), `issuer_suffix` ends the simulator's issuer."""

    @contextlib.contextmanager
    def start(
        sim: dict[str, Any] | None = None,
        web_client: dict[str, Any] | None = None,
        issuer_suffix: str = "",
        **broker_changes: Any,
    ) -> Iterator[Stack]:
        sim_port, broker_port = free_port(), free_port()
        broker = f"http://127.0.0.1:{broker_port}"
        callback = f"{broker}/auth/vneid/callback"
        web_client = {
            name: value.format(broker=broker) if isinstance(value, str) else value
            for name, value in (web_client or {}).items()
        }
        sim_settings = SimSettings(
            issuer=f"http://127.0.0.1:{sim_port}{issuer_suffix}",
            test_mode=True,
            clients=[
                ClientRegistration(
                    **{
                        "client_id": "vssid-broker",
                        "client_secret": "vssid-broker-demo-secret",
                        "redirect_uris": [callback],
                        "token_endpoint_auth_methods": [
                            "client_secret_basic",
                            "client_secret_post",
                        ],
                        "post_logout_redirect_uris": [f"{broker}/signed-out"],
                    }
                    | web_client
                ),
                ClientRegistration(
                    client_id=PKJWT_CLIENT,
                    redirect_uris=[callback],
                    token_endpoint_auth_methods=["private_key_jwt"],
                    jwks_uri=f"{broker}/.well-known/jwks.json",
                ),
                ClientRegistration(
                    client_id=APP_CLIENT,
                    application_type="native",
                    redirect_uris=[APP_REDIRECT_URI],
                    token_endpoint_auth_methods=["none"],
                ),
                ClientRegistration(
                    client_id=APP_PKJWT_CLIENT,
                    application_type="native",
                    redirect_uris=[APP_REDIRECT_URI],
                    token_endpoint_auth_methods=["private_key_jwt"],
                    jwks_uri=f"{broker}/.well-known/jwks.json",
                ),
            ],
            **(sim or {}),
        )
        settings = stack.settings.model_copy(
            update={
                "public_base_url": broker,
                "vneid_issuer": sim_settings.issuer,
                "vneid_jwks_min_refetch_seconds": 0,
                **broker_changes,
            }
        )
        settings.__dict__.pop("vneid_redirect_uri", None)  # cached from the copied settings
        broker_app = create_app(settings, clock=stack.clock)
        with (
            live_server(create_sim_app(sim_settings), sim_port) as sim_url,
            live_server(broker_app, broker_port) as broker_url,
        ):
            yield Stack(
                broker_url,
                sim_url,
                settings,
                stack.db,
                stack.clock,
                broker_app.state.broker,
                stack.sim_outbound,
            )

    yield start


async def signs_in(stack: Stack, citizen: str = "001085012345") -> None:
    async with AsyncClient() as browser:
        callback = await browser_login(browser, stack.broker, citizen)
        assert callback.status_code == 302, callback.text[:400]
        assert (await browser.get(f"{stack.broker}/account")).status_code == 200


@pytest.mark.parametrize(
    "changes",
    [
        {"vneid_token_auth_method": "client_secret_basic"},
        {"vneid_token_auth_method": "client_secret_post"},
        {"vneid_token_auth_method": "private_key_jwt", "vneid_client_id": PKJWT_CLIENT},
        {"vneid_use_par": True},
        {
            "vneid_use_par": True,
            "vneid_token_auth_method": "private_key_jwt",
            "vneid_client_id": PKJWT_CLIENT,
        },
        {"vneid_fetch_userinfo": True},
        {"vneid_max_age_seconds": 300},
    ],
    ids=["basic", "post", "private_key_jwt", "par", "par+private_key_jwt", "userinfo", "max_age"],
)
async def test_whole_login_with_each_client_configuration(
    own_stack: StackFactory, changes: dict[str, Any]
) -> None:
    with own_stack(**changes) as stack:
        await signs_in(stack)
    assert await stack.count(FederatedLink) == 1


async def test_app_login_with_par_and_private_key_jwt(own_stack: StackFactory) -> None:
    with own_stack(
        vneid_use_par=True,
        vneid_app_token_auth_method="private_key_jwt",
        vneid_app_client_id=APP_PKJWT_CLIENT,
    ) as s:
        async with AsyncClient() as app:
            done = await app_complete(
                app, s.broker, await app_until_redirect(app, s.broker, "046075001122")
            )
    assert done.status_code == 200, done.text


async def test_par_hides_the_request_from_the_browser(own_stack: StackFactory) -> None:
    with own_stack(vneid_use_par=True) as stack:
        async with AsyncClient() as browser:
            start = await browser.get(f"{stack.broker}/auth/vneid/login")
    location = start.headers["location"]
    assert "request_uri=urn" in location
    assert "nonce" not in location and "code_challenge" not in location


async def test_key_rotation_at_vneid_is_followed(own_stack: StackFactory) -> None:
    """rp-key-rotation-op-sign-key: a token signed by a new kid makes the broker refetch JWKS."""
    with own_stack() as stack:
        await signs_in(stack)  # JWKS cached with the first key
        async with AsyncClient() as client:
            (await client.post(f"{stack.sim}/_test/keys/rotate")).raise_for_status()
        await signs_in(stack, "046075001122")


@pytest.mark.parametrize("fault", ["id_token_no_kid_single_key", "id_token_no_kid_multiple_keys"])
async def test_kid_absent_is_resolved_among_the_right_keys(
    own_stack: StackFactory, fault: str
) -> None:
    """rp-id_token-kid-absent-single-jwks / -multiple-jwks: we try each usable key."""
    with own_stack() as stack:
        await stack.fault(fault)
        await signs_in(stack)


async def test_jwks_unavailable_after_rotation_is_a_clear_outage(own_stack: StackFactory) -> None:
    with own_stack() as stack:
        await signs_in(stack)
        async with AsyncClient() as client:
            (await client.post(f"{stack.sim}/_test/keys/rotate")).raise_for_status()
        await stack.fault("jwks_http_500")
        async with AsyncClient() as browser:
            back = await start_and_sign_in(browser, stack, "046075001122")
            response = await outcome_page(browser, await browser.get(back))
        assert response.status_code == 503
        assert '<code id="error-code">vneid_unavailable</code>' in response.text


@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [
        ("userinfo_wrong_sub", "userinfo_subject_mismatch", 400),
        ("userinfo_http_500", "vneid_unavailable", 503),
    ],
)
async def test_userinfo_faults_are_refused(
    own_stack: StackFactory, fault: str, code: str, status: int
) -> None:
    with own_stack(vneid_fetch_userinfo=True) as stack:
        await stack.fault(fault)
        async with AsyncClient() as browser:
            back = await start_and_sign_in(browser, stack)
            response = await browser.get(back)
        await assert_refused(stack, response, code, status)


async def test_discovery_naming_another_issuer_is_refused(own_stack: StackFactory) -> None:
    """rp-discovery-issuer-not-matching-config, against the simulator over real HTTP."""
    with own_stack() as stack:
        await stack.fault("discovery_wrong_issuer")
        provider = ProviderClient(stack.settings)
        with pytest.raises(ProviderMisconfigured):
            await provider.metadata()
        await provider.aclose()
        async with AsyncClient() as browser:  # the broker says it is misconfigured
            await stack.fault("discovery_wrong_issuer")
            response = await browser.get(f"{stack.broker}/auth/vneid/login")
        assert response.status_code == 502
        assert '<code id="error-code">vneid_metadata_invalid</code>' in response.text
        assert "bị cấu hình sai" in response.text
        assert "tạm thời không phản hồi" not in response.text
