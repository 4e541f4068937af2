"""Request and response bodies of the mobile app's login API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from vssid_broker.accounts.schemas import AccountOut
from vssid_broker.sessions.schemas import TokensOut
from vssid_broker.sessions.tokens import IssuedTokens

# RFC 7636 §4.1: the verifier is 43–128 unreserved characters.
CODE_VERIFIER = r"^[A-Za-z0-9\-._~]{43,128}$"


class StartRequest(BaseModel):
    redirect_uri: str = Field(
        max_length=500, description="One of the app's registered redirect URIs"
    )
    code_challenge: str = Field(
        pattern=r"^[A-Za-z0-9_\-]{43}$", description="BASE64URL(SHA256(verifier))"
    )
    code_challenge_method: Literal["S256"]
    max_age: int | None = Field(
        default=None,
        ge=0,
        le=86400,
        description="Step-up (RFC 9470): ask VNeID for a sign-in at most this many seconds old; "
        "the ID token's auth_time is checked against it",
    )
    prompt: Literal["login"] | None = Field(
        default=None, description="`login`: VNeID asks for the passcode again (OIDC Core §3.1.2.1)"
    )


class StartResponse(BaseModel):
    authorization_url: str
    state: str
    expires_in: int


class CompleteRequest(BaseModel):
    code: str | None = Field(default=None, min_length=1, max_length=2048)
    state: str = Field(min_length=1, max_length=256)
    code_verifier: str = Field(pattern=CODE_VERIFIER)
    iss: str | None = Field(default=None, max_length=500, description="RFC 9207 `iss` as received")
    encrypt_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="VNeID's dialect: the RSA-wrapped AES key of an encrypted `code`, as received",
    )
    error: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="the `error` VNeID sent back instead of a code, forwarded so the person is "
        "told why (`unmet_authentication_requirements` → `vneid_level_insufficient`)",
    )

    @model_validator(mode="after")
    def _code_or_error(self) -> CompleteRequest:
        if (self.code is None) == (self.error is None):
            raise ValueError("send the code VNeID returned, or its error, not both")
        return self


class PasswordSignIn(BaseModel):
    identifier: str = Field(
        min_length=1, max_length=20, description="10-digit BHXH code or 12-digit citizen ID"
    )
    password: str = Field(min_length=1, max_length=1024)


class ProofRequest(BaseModel):
    proof_ticket: str = Field(
        min_length=1, max_length=200, description="from the link_under_review problem"
    )
    identifier: str = Field(min_length=1, max_length=20, description="BHXH code or citizen ID")
    password: str = Field(min_length=1, max_length=1024)


class ProofOut(BaseModel):
    outcome: Literal["linked", "filed_for_review"]
    """`linked`: sign in with VNeID again; `filed_for_review`: staff confirm the proof."""


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
