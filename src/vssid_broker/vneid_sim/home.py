"""The simulator's front page: what this server is and where its protocol documents are, so a
link to the issuer (the demo banner prints one) opens a page instead of a 404."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from .pages import render
from .state import SimState


def routes(state: SimState) -> APIRouter:
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse)
    async def home() -> HTMLResponse:
        return render(
            "home.html",
            issuer=state.settings.issuer,
            discovery=state.endpoint("/.well-known/openid-configuration"),
            jwks=state.endpoint("/jwks"),
            citizens=len(state.listed_citizen_ids),
        )

    return router
