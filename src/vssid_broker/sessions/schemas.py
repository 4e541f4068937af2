"""Token responses (RFC 6749 §5.1 field names)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from vssid_broker.accounts.schemas import AccountOut
from vssid_broker.sessions.tokens import IssuedTokens


class TokensOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer", "DPoP"] = "Bearer"
    expires_in: int
    refresh_token: str


class LoginTokensOut(TokensOut):
    account: AccountOut
    linked_now: bool
    """True when this login linked the VNeID identity to the account: tell the person."""

    @classmethod
    def of(cls, tokens: IssuedTokens, *, account: AccountOut, linked_now: bool) -> LoginTokensOut:
        return cls(
            access_token=tokens.access_token,
            token_type="DPoP" if tokens.token_type == "DPoP" else "Bearer",
            expires_in=tokens.expires_in,
            refresh_token=tokens.refresh_token,
            account=account,
            linked_now=linked_now,
        )


class SessionOut(BaseModel):
    """One signed-in browser or app installation of the person."""

    id: str
    channel: Literal["browser", "app"]
    device: str | None
    """The User-Agent the session signed in with."""
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    """The latest moment it can last; it ends sooner when unused (idle timeout)."""
    current: bool
    """True for the session making this request."""
