"""Logs never carry a full citizen ID or a token, even when code slips."""

from __future__ import annotations

import io
import logging

import pytest

from vssid_broker.logging_setup import RedactingFilter, build_handler, redact


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


def test_refusal_codes_stay_readable_and_credentials_in_urls_do_not() -> None:
    refusal = redact("login refused channel=app code=vneid_level_insufficient detail=acr")
    assert "code=vneid_level_insufficient" in refusal
    access = redact(
        '127.0.0.1:5050 - "GET /auth/vneid/callback?code=Q1w2E3r4T5&state=abcDEF123xyz&iss=x'
        ' HTTP/1.1" 302'
    )
    assert "Q1w2E3r4T5" not in access and "abcDEF123xyz" not in access
    assert "/auth/vneid/callback?code=[redacted]&state=[redacted]&iss=x" in access


def test_bhxh_codes_birth_dates_and_tracebacks_are_masked() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test.traceback")
    logger.addHandler(build_handler("text", stream))
    logger.propagate = False
    try:
        raise ValueError("no account for 0112345678 born 19850312, id 001085012345")
    except ValueError:
        logger.exception("lookup failed for %s", "0112345678")
    text = stream.getvalue()
    assert "Traceback" in text
    for leaked in ("0112345678", "19850312", "001085012345"):
        assert leaked not in text
    assert "01********" in text and "001******345" in text
