"""Two broker processes against one database: a login started on one finishes on the other.

Nothing of a login, a token family or a signing key may live only in one process's memory, or a
second machine behind the load balancer would refuse half the logins.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Stack
from tests.support.flows import APP_REDIRECT_URI, AppPkce, query_of
from tests.support.http import AsyncClient
from tests.support.live_server import free_port
from tests.test_cli import running, serve_env
from vssid_broker.vneid_sim.driver import sign_in_at_vneid

CITIZEN = "001085012345"


async def test_a_login_started_on_one_process_completes_and_refreshes_on_another(
    stack: Stack, tmp_path: Path
) -> None:
    port_a, port_b = free_port(), free_port()
    # Behind one load balancer both processes share the public URL (the tokens' issuer).
    # A spent token presented at once is reuse only without the grace window for lost answers.
    env = serve_env(stack, tmp_path, public_port=port_a, VSSID_REFRESH_TOKEN_GRACE_SECONDS="0")
    a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    serve = ("serve", "--port")
    with (
        running(*serve, str(port_a), env=env, cwd=tmp_path, ready_url=f"{a}/readyz"),
        running(*serve, str(port_b), env=env, cwd=tmp_path, ready_url=f"{b}/readyz"),
    ):
        async with AsyncClient(timeout=10) as app:
            pkce = AppPkce.new()
            start = await app.post(
                f"{a}/api/v1/auth/vneid/start",
                json={
                    "redirect_uri": APP_REDIRECT_URI,
                    "code_challenge": pkce.challenge,
                    "code_challenge_method": "S256",
                },
            )
            assert start.status_code == 200, start.text
            location = await sign_in_at_vneid(app, start.json()["authorization_url"], CITIZEN)
            params = query_of(location)
            complete = await app.post(
                f"{b}/api/v1/auth/vneid/complete",
                json={**params, "code_verifier": pkce.verifier},
            )
            assert complete.status_code == 200, complete.text
            tokens = complete.json()
            assert tokens["account"]["citizen_id"] == CITIZEN

            me = await app.get(
                f"{a}/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
            )
            assert me.status_code == 200 and me.json()["citizen_id"] == CITIZEN

            refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
            rotated = await app.post(f"{b}/api/v1/auth/token", data=refresh)
            assert rotated.status_code == 200, rotated.text
            # The spent token comes back at the other process: refused there too.
            replayed = await app.post(f"{a}/api/v1/auth/token", data=refresh)
            assert replayed.status_code == 400 and replayed.json()["code"] == "invalid_grant"
            # ... and reuse ended the family everywhere.
            newest = {
                "grant_type": "refresh_token",
                "refresh_token": rotated.json()["refresh_token"],
            }
            assert (await app.post(f"{b}/api/v1/auth/token", data=newest)).status_code == 400
