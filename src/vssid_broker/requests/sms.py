"""Sending a one-time code to a phone: the interface a real SMS gateway's adapter implements,
and the demo sender whose messages the demo page (`/demo/sms`) shows.

An adapter is one class with `async def send(self, phone: str, text: str) -> None`: it raises
`SmsNotSent` when the gateway refused or could not be reached (the request is then not
created), and must never log the text (it holds the code). `VSSID_SMS_SENDER` picks it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from vssid_broker.db import utcnow

DEMO_MESSAGES_KEPT = 50


class SmsNotSent(Exception):
    """The gateway did not take the message."""


class SmsSender(Protocol):
    async def send(self, phone: str, text: str) -> None: ...


@dataclass(frozen=True)
class SentSms:
    phone: str
    text: str
    sent_at: datetime


class DemoSmsSender:
    """Keeps the last messages in this process's memory instead of sending them: the demo
    and the tests read them from `/demo/sms`. Never configured in production."""

    def __init__(self) -> None:
        self._sent: deque[SentSms] = deque(maxlen=DEMO_MESSAGES_KEPT)

    async def send(self, phone: str, text: str) -> None:
        self._sent.append(SentSms(phone, text, utcnow()))

    def sent(self) -> list[SentSms]:
        """Newest first."""
        return list(reversed(self._sent))
