"""The test-mode API under `/_test`: queue faults, rotate the signing key, lock and unlock a
citizen, sign a citizen out of VNeID, forget every sign-in. `create_app` mounts it only when
`settings.test_mode` is on; otherwise every `/_test` path is 404, so a simulator reachable by
others cannot be made to misbehave.

No standard governs these controls; they exist so relying-party tests can reach the cases a
real provider produces rarely or never on demand.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from .faults import FAULT_NAMES, Fault
from .logout import logged_out_page, send_backchannel_logouts, sign_out_everywhere
from .state import SimState


class FaultRequest(BaseModel):
    fault: str
    times: int = Field(default=1, ge=1)
    delay_seconds: float | None = Field(default=None, ge=0)


def pending_faults(state: SimState) -> dict[str, Any]:
    return {
        "pending": [
            {"fault": f.name, "times": f.times, "delay_seconds": f.delay_seconds}
            for f in state.faults.pending()
        ],
        "known_faults": list(FAULT_NAMES),
    }


def add_fault(state: SimState, body: FaultRequest) -> JSONResponse:
    if body.fault not in FAULT_NAMES:
        return JSONResponse(
            {"error": f"unknown fault {body.fault!r}", "known_faults": list(FAULT_NAMES)},
            status_code=400,
        )
    state.faults.add(Fault(body.fault, body.times, body.delay_seconds))
    return JSONResponse(pending_faults(state), status_code=201)


def rotate_keys(state: SimState) -> JSONResponse:
    """A new signing key, published at once. The old one stays in the JWKS for the grace time
    so tokens it signed still verify; a client meets the new `kid` and must refetch the JWKS
    (OpenID Connect Core §10.1.1)."""
    previous = state.keys.signing_key.kid
    current = state.keys.rotate().kid
    return JSONResponse(
        {
            "kid": current,
            "previous_kid": previous,
            "published_kids": [k.kid for k in state.keys.published()],
        }
    )


def unknown_citizen() -> JSONResponse:
    return JSONResponse({"error": "unknown citizen"}, status_code=404)


async def lock_citizen(state: SimState, citizen_id: str) -> JSONResponse:
    """Lock the account, revoke the citizen's access tokens and send back-channel logout
    tokens to the clients that hold any (Back-Channel Logout 1.0 §2.5)."""
    citizen = state.citizens.get(citizen_id)
    if citizen is None:
        return unknown_citizen()
    locked = citizen.model_copy(update={"locked": True})
    state.citizens[citizen_id] = locked
    revoked = state.revoke_tokens_for(citizen_id)
    notified = await send_backchannel_logouts(state, locked)
    return JSONResponse(
        {
            "citizen_id": citizen_id,
            "locked": True,
            "revoked_access_tokens": revoked,
            "backchannel_logout": notified,
        }
    )


async def sign_out_citizen(state: SimState, citizen_id: str) -> Response:
    """The citizen signs out in the VNeID app or portal: the answer is the page VNeID then
    shows (its front-channel iframes load each client's logout URI), and clients with a
    back-channel URI are sent logout tokens (their statuses in `X-Backchannel-Statuses`)."""
    citizen = state.citizens.get(citizen_id)
    if citizen is None:
        return unknown_citizen()
    frames, deliveries = await sign_out_everywhere(state, citizen)
    page = logged_out_page(state, frames, None)
    statuses = [str(d.get("status", d.get("error", ""))) for d in deliveries]
    page.headers["X-Backchannel-Statuses"] = ",".join(statuses)
    return page


def unlock_citizen(state: SimState, citizen_id: str) -> JSONResponse:
    citizen = state.citizens.get(citizen_id)
    if citizen is None:
        return unknown_citizen()
    state.citizens[citizen_id] = citizen.model_copy(update={"locked": False})
    return JSONResponse({"citizen_id": citizen_id, "locked": False})


def routes(state: SimState) -> APIRouter:
    router = APIRouter(prefix="/_test")

    @router.post("/faults")
    async def post_fault(body: FaultRequest) -> JSONResponse:
        return add_fault(state, body)

    @router.get("/faults")
    async def list_faults() -> JSONResponse:
        return JSONResponse(pending_faults(state))

    @router.delete("/faults")
    async def clear_faults() -> Response:
        state.faults.clear()
        return Response(status_code=204)

    @router.delete("/sign-ins")
    async def forget_sign_ins() -> Response:
        state.forget_sign_ins()
        return Response(status_code=204)

    @router.post("/keys/rotate")
    async def post_rotate() -> JSONResponse:
        return rotate_keys(state)

    @router.post("/citizens/{citizen_id}/lock")
    async def post_lock(citizen_id: str) -> JSONResponse:
        return await lock_citizen(state, citizen_id)

    # GET too, so a browser test can open it as the page the person sees.
    @router.api_route("/citizens/{citizen_id}/sign-out", methods=["GET", "POST"])
    async def sign_out(citizen_id: str) -> Response:
        return await sign_out_citizen(state, citizen_id)

    @router.post("/citizens/{citizen_id}/unlock")
    async def post_unlock(citizen_id: str) -> JSONResponse:
        return unlock_citizen(state, citizen_id)

    return router
