"""The card's SVG as a browser draws it: the QR read back from a screenshot."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from tests.conftest import Stack
from tests.e2e.test_insurance_and_card import AN, qr_fields, signed_in_app
from tests.support.http import AsyncClient

pytestmark = pytest.mark.browser


async def test_health_card_svg_carries_the_same_qr(stack: Stack, browser: Browser) -> None:
    """The SVG drawn by a real browser, photographed, and its QR read back."""
    async with AsyncClient() as app:
        await signed_in_app(stack, app, AN)
        svg = await app.get(f"{stack.broker}/api/v1/me/health-card.svg")
        png = await app.get(f"{stack.broker}/api/v1/me/health-card.png")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "NGUYỄN VĂN AN" in svg.text
    context = await browser.new_context(viewport={"width": 1012, "height": 638})
    page = await context.new_page()
    await page.set_content(svg.text)
    shot = await page.screenshot()
    await context.close()
    assert qr_fields(shot) == qr_fields(png.content)
