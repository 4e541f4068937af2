"""Logs never carry a full citizen ID or a token, even when code slips."""

from __future__ import annotations

import logging

import pytest

from vssid_broker.logging_setup import RedactingFilter


def test_redaction_masks_citizen_ids_and_token_like_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="test.redaction"):
        logger.info("citizen %s sent Bearer abc.def.ghi", "001085012345")
        logger.info("GET /auth/vneid/callback?code=SECRETCODE&state=xyz")
    text = caplog.text
    assert "001085012345" not in text and "001******345" in text
    assert "abc.def.ghi" not in text and "SECRETCODE" not in text
