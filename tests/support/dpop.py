"""The app's side of DPoP (RFC 9449): a key pair and proofs signed with it."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey


class AppDpopKey:
    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.key = ECKey.generate_key("P-256")
        self.clock = clock

    @property
    def jkt(self) -> str:
        return self.key.thumbprint()

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        iat: int | None = None,
        jti: str | None = None,
        typ: str = "dpop+jwt",
        jwk: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = int(self.clock().timestamp()) if self.clock else int(time.time())
        payload: dict[str, Any] = {
            "htm": method,
            "htu": url,
            "iat": now if iat is None else iat,
            "jti": jti or secrets.token_urlsafe(16),
            **claims,
        }
        if access_token is not None:
            digest = hashlib.sha256(access_token.encode()).digest()
            payload["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        header = {"typ": typ, "alg": "ES256", "jwk": jwk or self.key.as_dict(private=False)}
        return jws.serialize_compact(header, json.dumps(payload), self.key, algorithms=["ES256"])
