"""Request and response bodies of the mobile app's login API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

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


class StartResponse(BaseModel):
    authorization_url: str
    state: str
    expires_in: int


class CompleteRequest(BaseModel):
    code: str = Field(min_length=1, max_length=2048)
    state: str = Field(min_length=1, max_length=256)
    code_verifier: str = Field(pattern=CODE_VERIFIER)
    iss: str | None = Field(default=None, max_length=500, description="RFC 9207 `iss` as received")
