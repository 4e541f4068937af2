"""The simulated VNeID provider as an ASGI app: one router per endpoint module, sharing one
`SimState`.

    home.py          / (what this server is)
    discovery.py     /.well-known/openid-configuration, /.well-known/oauth-authorization-server,
                     /jwks
    authorize.py     /authorize
    par.py           /par
    login_pages.py   /login, /otp, /consent, /cancel
    token.py         /token
    userinfo.py      /userinfo
    logout.py        /logout, and the back-channel logout tokens sent when a citizen is locked
    test_api.py      /_test/... (test mode only)

What the endpoints share is in ``protocol.py``; the rules for authorization request
parameters in ``authorization.py``; client authentication in ``client_auth.py``; signed tokens
in ``id_tokens.py``.

Every absolute URL is built from ``settings.issuer``, never from the request, so the app
works the same served at a root or mounted under a path prefix in another app.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from . import authorize, discovery, home, login_pages, logout, par, test_api, token, userinfo
from .config import SimSettings
from .protocol import Refused, answer_refusal
from .state import SimState


def create_app(
    settings: SimSettings | None = None,
    *,
    outbound_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the simulator. `outbound_transport` routes its own HTTP calls (client JWKS,
    back-channel logout) through a custom httpx transport, e.g. an in-process ASGI app."""
    settings = settings or SimSettings()
    state = SimState(settings, outbound_transport=outbound_transport)
    app = FastAPI(
        title="Simulated VNeID",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.sim = state
    # A check that refuses a request raises Refused with the complete answer.
    app.add_exception_handler(Refused, answer_refusal)
    for module in (home, discovery, authorize, par, token, userinfo, logout, login_pages):
        app.include_router(module.routes(state))
    if settings.test_mode:
        app.include_router(test_api.routes(state))
    return app
