"""Step-up (RFC 9470): is the person's last sign-in recent and strong enough to act?

A request to the agency needs a VNeID sign-in at level 2 no older than
`VSSID_STEP_UP_MAX_AGE_SECONDS`. What counts is `auth_time`, when the person last proved
themselves at VNeID, as the ID token said: an access token carries it, a browser session holds
it, and a refresh copies it unchanged, so a refreshed token is exactly as fresh as the sign-in
behind it. A password sign-in has no VNeID `auth_time` and never counts. A provider that sends
no `auth_time` (the VNeID dialect's userinfo has none) gives a sign-in that is never fresh: the
broker cannot know when the person last authenticated, so it asks again with `max_age`, to
which a provider must answer with `auth_time` (OIDC Core §3.1.2.1).
"""

from __future__ import annotations

from datetime import datetime

from vssid_broker.config import Settings
from vssid_broker.errors.requests import StepUpRequired


def require_recent_vneid_sign_in(
    *, acr: str, auth_time: datetime | int | None, now: datetime, settings: Settings
) -> None:
    """Raise the RFC 9470 challenge unless the sign-in is level 2 and recent enough."""
    max_age = settings.step_up_max_age_seconds
    levels = settings.vneid_level2_acr_values
    if acr not in levels:
        raise StepUpRequired(
            "the session is not a VNeID level-2 sign-in", max_age=max_age, acr_values=levels
        )
    if auth_time is None:
        raise StepUpRequired(
            "the session has no VNeID auth_time", max_age=max_age, acr_values=levels
        )
    seconds = auth_time.timestamp() if isinstance(auth_time, datetime) else float(auth_time)
    age = now.timestamp() - seconds
    # No clock skew allowed here: the ID token's auth_time was checked with it at the login.
    if age > max_age:
        raise StepUpRequired(
            f"the VNeID sign-in is {int(age)} s old; at most {max_age} s is accepted",
            max_age=max_age,
            acr_values=levels,
        )
