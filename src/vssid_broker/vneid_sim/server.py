"""Serving the simulator with uvicorn, with a summary of what a developer needs to use it."""

from __future__ import annotations

from urllib.parse import urlsplit

import uvicorn

from .app import create_app
from .citizens import load_citizens
from .config import SimSettings


def describe(settings: SimSettings) -> str:
    """The start-up banner: issuer, registered clients and the test citizens."""
    lines = [
        "Simulated VNeID (not the real VNeID; for development and tests)",
        f"  issuer:     {settings.issuer}",
        f"  discovery:  {settings.issuer.rstrip('/')}/.well-known/openid-configuration",
        f"  test API:   {'on' if settings.test_mode else 'off'} (VNEID_SIM_TEST_MODE)",
        "",
        "Registered clients:",
    ]
    for client in settings.clients:
        # Demo secrets only: the simulator never holds a real credential.
        lines.append(
            f"  {client.client_id}  secret={client.client_secret or '-'}  "
            f"auth={','.join(client.token_endpoint_auth_methods)}"
        )
        lines.extend(f"      redirect_uri {uri}" for uri in client.redirect_uris)
    lines += [
        "",
        f"Test citizens ({settings.citizens_file.name}; OTP for level 2: {settings.otp_code}):",
        f"  {'citizen ID':<13} {'lvl':<3} {'locked':<6} {'passcode':<10} name",
    ]
    for citizen in load_citizens(settings.citizens_file):
        lines.append(
            f"  {citizen.citizen_id:<13} {citizen.level:<3} {'yes' if citizen.locked else '':<6} "
            f"{citizen.passcode:<10} {citizen.full_name}"
        )
    if settings.generated_citizens:
        lines.append(f"  + {settings.generated_citizens} generated citizens (not listed)")
    return "\n".join(lines)


def run(host: str, port: int, settings: SimSettings | None) -> None:
    """Serve the simulator until interrupted. Called by `vssid-broker vneid-sim`."""
    if settings is None:
        # Without explicit settings the issuer follows the chosen address.
        settings = SimSettings()
        default_issuer = SimSettings.model_fields["issuer"].default
        if settings.issuer == default_issuer:
            shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
            settings = settings.model_copy(update={"issuer": f"http://{shown_host}:{port}"})
    issuer_path = urlsplit(settings.issuer).path
    if issuer_path not in ("", "/"):
        raise SystemExit(
            f"issuer {settings.issuer} has a path; run() serves at the root, so mount "
            "create_app() under that path in another app instead"
        )
    print(describe(settings), flush=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
