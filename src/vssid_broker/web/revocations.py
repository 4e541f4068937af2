"""A request that ended sessions answers only once every broker process has forgotten them.

Between the revoking transaction's commit and the response, the process sends a barrier through
PostgreSQL and waits, at most `REVOCATION_WAIT_SECONDS`, until every listening process has
acknowledged it, which each does after handling the revocation's own notification
(`sessions/live_cache.py` states what remains). So the person who sees "signed out" cannot
reach a process that still remembers the session live. Installed only where the cache is
(PostgreSQL); a request that revoked nothing waits for nothing.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vssid_broker.sessions.live_cache import (
    LiveSessionListener,
    answer_after_everyone_forgot,
    collecting_revocations,
)


class AnswerAfterEveryoneForgot:
    def __init__(self, app: ASGIApp, *, listener: LiveSessionListener) -> None:
        self.app = app
        self.listener = listener

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with collecting_revocations() as committed:

            async def send_once_forgotten(message: Message) -> None:
                if message["type"] == "http.response.start" and committed:
                    await answer_after_everyone_forgot(self.listener, committed)
                await send(message)

            await self.app(scope, receive, send_once_forgotten)
