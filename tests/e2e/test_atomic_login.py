"""A crash mid-way through a login leaves nothing half-written."""

from __future__ import annotations

from typing import Any, NoReturn

import pytest

from tests.conftest import Stack
from tests.support.flows import browser_login
from tests.support.http import AsyncClient
from vssid_broker.linking.models import FederatedLink
from vssid_broker.sessions import browser as browser_sessions
from vssid_broker.sessions.models import BrowserSession


async def test_failure_after_linking_rolls_the_link_back(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_args: Any, **_kwargs: Any) -> NoReturn:
        raise RuntimeError("disk full while writing the session")

    # The link is written first in the same transaction; the session write then fails.
    monkeypatch.setattr(browser_sessions, "start", crash)
    async with AsyncClient() as browser:
        response = await browser_login(browser, stack.broker, "001085012345")
    assert response.status_code == 500
    assert '<code id="error-code">internal_error</code>' in response.text
    assert "disk full" not in response.text
    assert await stack.count(FederatedLink) == 0
    assert await stack.count(BrowserSession) == 0

    monkeypatch.undo()  # the same person, once the fault is gone, links normally
    async with AsyncClient() as browser:
        assert (await browser_login(browser, stack.broker, "001085012345")).status_code == 302
    assert await stack.count(FederatedLink) == 1
