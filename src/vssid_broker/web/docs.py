"""`/docs`: Swagger UI from files the broker serves itself, so the API documentation works on
a machine without internet (FastAPI's default page loads its assets from a CDN).

The assets are Swagger UI's official distribution files as shipped by the `fastapi-offline`
package (MIT; Swagger UI itself is Apache-2.0); the page starts them with a script file of
ours, not an inline script, so a Content-Security-Policy without 'unsafe-inline' allows it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from vssid_broker.web.rendering import templates

SWAGGER_UI_ASSETS = Path(str(files("fastapi_offline") / "static"))

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui(request: Request) -> Response:
    return templates.TemplateResponse(
        request, "docs.html", {"openapi_url": request.app.openapi_url}
    )
