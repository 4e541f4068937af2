"""Token responses (RFC 6749 §5.1 field names) and the person's sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class TokensOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer", "DPoP"] = "Bearer"
    expires_in: int
    refresh_token: str


class SessionView(BaseModel):
    """One signed-in browser (`channel` "browser") or app installation ("app") of a person, as
    the person's own list and the staff's view of the person show it."""

    id: str
    channel: str
    device: str | None
    device_name: str
    """`device` as a person recognises it ("Chrome trên Android 14"), `sessions.devices`."""
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime


EndCause = Literal["revoked", "expired", "idle"]


class SessionHistory(SessionView):
    """A session as the person's export lists it: live, or ended and not yet purged."""

    ended_at: datetime | None
    """When it ended; None while it lasts."""
    ended_because: EndCause | None
    """`revoked`: signed out, or ended by the person, staff or VNeID (the audit events say
    which); `expired`: its absolute lifetime ran out; `idle`: unused for too long."""


class SessionOut(BaseModel):
    """One signed-in browser or app installation of the person."""

    id: str
    channel: Literal["browser", "app"]
    device: str | None
    """The User-Agent the session signed in with."""
    device_name: str
    """The device as a person recognises it: "Chrome trên Android 14", or "Thiết bị không rõ"."""
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    """The latest moment it can last; it ends sooner when unused (idle timeout)."""
    current: bool
    """True for the session making this request."""
