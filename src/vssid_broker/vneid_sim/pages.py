"""Rendering the simulator's HTML pages (Vietnamese, plain forms, no JavaScript)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

_templates = Environment(
    loader=PackageLoader("vssid_broker.vneid_sim", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

# The page is a form step; caching it would let a back button replay a stale login_id.
_NO_STORE = {"Cache-Control": "no-store"}


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    # Templates build form actions as "{{ issuer }}/path": an issuer's trailing "/" is dropped
    # there (only there: `iss` claims carry the issuer exactly).
    if isinstance(context.get("issuer"), str):
        context["issuer"] = context["issuer"].rstrip("/")
    html = _templates.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=_NO_STORE)


def error_page(
    issuer: str,
    heading: str,
    message: str,
    *,
    status_code: int = 400,
    detail: str | None = None,
    step: str = "error",
    login_id: str | None = None,
) -> HTMLResponse:
    return render(
        "error.html",
        status_code=status_code,
        issuer=issuer,
        heading=heading,
        message=message,
        detail=detail,
        step=step,
        login_id=login_id,
    )
