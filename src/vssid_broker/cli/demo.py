"""`vssid-broker demo`: everything on one laptop — embedded SQLite, simulated VNeID, demo data."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import uvicorn

from vssid_broker import schema, sealing
from vssid_broker.app import create_app
from vssid_broker.audit import chain
from vssid_broker.cli.rp_key import ensure_rp_key, public_pem
from vssid_broker.config import Settings, load_settings
from vssid_broker.db import database, utcnow
from vssid_broker.seeding import move_demo_issuer, seed_demo_data
from vssid_broker.seeding.demo_accounts import demo_accounts
from vssid_broker.vneid_sim.app import create_app as create_sim_app
from vssid_broker.vneid_sim.citizens import load_citizens
from vssid_broker.vneid_sim.config import SimSettings, demo_clients_for_broker

OUTCOMES = {
    "079190123456": "chỉ mức 1 → bị từ chối (cần mức 2)",
    "048095000111": "mức 2, chưa có tài khoản VssID → hướng dẫn đăng ký",
    "031188004567": "mức 2, hồ sơ VssID chưa có số định danh → chờ cán bộ kiểm tra",
    "092087007788": "mức 2, hai hồ sơ VssID giống nhau → chờ cán bộ kiểm tra",
    "038192003344": "tài khoản VNeID bị khoá → VNeID từ chối",
    "040183002233": "tài khoản VssID bị khoá → bị từ chối",
}


# Demo-only staff users, printed in the banner; a real deployment creates its own with
# `vssid-broker staff create` and each person enrols their own authenticator.
DEMO_STAFF = [
    ("reviewer", "reviewer-demo-2026", "reviewer"),
    ("approver", "approver-demo-2026", "approver"),
    ("auditor", "auditor-demo-2026", "auditor"),
    ("admin", "admin-demo-2026", "admin"),
]
DEMO_TOTP_SECRET = "VSSIDDEMOSTAFFKEYVSSIDDEMOSTAFFK"
"""Every demo staff member's authenticator secret (RFC 6238, base32), printed in the banner."""


async def ensure_demo_staff(settings: Settings) -> None:
    from sqlalchemy import select

    from vssid_broker.admin.models import StaffRole, StaffUser
    from vssid_broker.admin.second_factor import enrol_with_secret
    from vssid_broker.admin.service import create_staff_user
    from vssid_broker.sessions.keys import SigningKeys, load_key_encryption_key

    keys = SigningKeys(settings, load_key_encryption_key(settings))
    async with database(settings) as db, db.sessions.begin() as session:
        existing = {u.username: u for u in await session.scalars(select(StaffUser))}
        for username, password, role in DEMO_STAFF:
            user = existing.get(username) or await create_staff_user(
                session,
                username=username,
                password=password,
                role=StaffRole(role),
                now=utcnow(),
            )
            if user.totp_enrolled_at is None:
                await enrol_with_secret(session, user, DEMO_TOTP_SECRET, keys, utcnow())


def banner(settings: Settings, sim: SimSettings) -> str:
    linked = {
        a["citizen_id"] for a in demo_accounts() if a["citizen_id"] and a["status"] == "active"
    }
    lines = [
        "",
        "vssid-broker demo",
        f"  Open {settings.public_base_url}/ and choose "
        "“Đăng nhập bằng tài khoản định danh điện tử”.",
        f"  Simulated VNeID: {sim.issuer}/ (passcode Vneid@123, OTP {sim.otp_code}), "
        f"speaking {settings.vneid_protocol}",
        f"  The VssID app's flow, played in the browser: {settings.public_base_url}/demo/app",
        f"  API docs: {settings.public_base_url}/docs",
        "",
        "  Test citizens and what each shows:",
    ]
    for citizen in load_citizens(sim.citizens_file):
        outcome = OUTCOMES.get(citizen.citizen_id)
        if outcome is None and citizen.citizen_id in linked and citizen.level == 2:
            outcome = "mức 2, có tài khoản VssID → liên kết và đăng nhập"
        if outcome:
            lines.append(f"    {citizen.citizen_id}  {citizen.full_name:<22} {outcome}")
    lines += [
        "",
        f"  Trang cán bộ (staff console): {settings.public_base_url}/admin",
        f"  Admin API: {settings.public_base_url}/docs (tags “admin: …”), POST /admin/api/v1/token",
    ]
    lines += [f"    {role:<9} {username} / {password}" for username, password, role in DEMO_STAFF]
    lines += [
        f"    second factor (TOTP) secret for all of them: {DEMO_TOTP_SECRET}",
        "    add it to an authenticator app, or: "
        f"python3 -c 'import pyotp; print(pyotp.TOTP(\"{DEMO_TOTP_SECRET}\").now())'",
        "    four eyes: “reviewer” proposes a link, “approver” confirms it",
        "",
    ]
    return "\n".join(lines)


DEMO_RP_KEY_FILE = Path("./var/vneid-rp-key.pem")
DEMO_RP_PUBLIC_KEY_FILE = Path("./var/vneid-rp-key.pub.pem")
"""The demo's relying-party key pair for the dialect: the broker decrypts with the private
part, the simulator encrypts to the public part."""


def use_dialect(sim: str) -> dict[str, str]:
    """The broker's settings for the dialect against the simulator; the demo's RP key made
    under var/ once and kept. Returns the simulator's matching settings."""
    public_key = ensure_rp_key(DEMO_RP_KEY_FILE)
    DEMO_RP_PUBLIC_KEY_FILE.write_text(public_pem(public_key))
    for name, value in {
        "PROTOCOL": "vneid-encrypted",
        "AUTHORIZATION_ENDPOINT": f"{sim}/authorize",
        "TOKEN_ENDPOINT": f"{sim}/token",
        "USERINFO_ENDPOINT": f"{sim}/userinfo",
        "END_SESSION_ENDPOINT": f"{sim}/logout",
        "DECRYPTION_KEY_FILES": str(DEMO_RP_KEY_FILE),
    }.items():
        os.environ.setdefault(f"VSSID_VNEID_{name}", value)
    return {"protocol": "vneid-encrypted", "rp_public_key_file": str(DEMO_RP_PUBLIC_KEY_FILE)}


def demo_sim_overrides(settings: Settings) -> dict[str, object]:
    """The simulator's issuer, and (unless the operator registers clients of their own) the
    broker's registrations at the address the broker runs on: signing out on other ports
    then ends on the broker's own signed-out page, not on VNeID's "not registered" page."""
    overrides: dict[str, object] = {"issuer": settings.vneid_issuer}
    if not {"VNEID_SIM_CLIENTS", "VNEID_SIM_CLIENTS_FILE"} & {k.upper() for k in os.environ}:
        overrides["clients"] = demo_clients_for_broker(settings.public_base_url)
    return overrides


async def run(port: int, sim_port: int, protocol: str = "openid-connect") -> None:
    os.environ.setdefault("VSSID_PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    os.environ.setdefault("VSSID_VNEID_ISSUER", f"http://127.0.0.1:{sim_port}")
    sim_dialect = {}
    if protocol == "vneid-encrypted":
        sim_dialect = use_dialect(os.environ["VSSID_VNEID_ISSUER"].rstrip("/"))
    settings = load_settings(Settings)
    if not settings.is_sqlite:
        raise SystemExit("the demo runs on the embedded SQLite database only")
    from vssid_broker.sessions.keys import refuse_a_lost_key_file

    await refuse_a_lost_key_file(settings)
    sealing.install(sealing.CitizenIdKeys.from_settings(settings))
    chain.install(chain.ChainKeys.from_settings(settings))
    await asyncio.to_thread(schema.upgrade, settings.database_url)
    async with database(settings) as db, db.sessions.begin() as session:
        moved = await move_demo_issuer(session, settings.vneid_issuer)
        seeded = await seed_demo_data(session, issuer=settings.vneid_issuer, now=utcnow())
    if moved:
        print(f"links and review cases moved to the simulator's new port: {moved}")
    print(f"demo accounts added: {seeded.accounts}")
    print(f"demo review cases added: {seeded.cases}")
    await ensure_demo_staff(settings)
    sim_settings = load_settings(SimSettings, **demo_sim_overrides(settings), **sim_dialect)
    servers = [
        uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None)
        ),
        uvicorn.Server(
            uvicorn.Config(
                create_sim_app(sim_settings), host="127.0.0.1", port=sim_port, log_config=None
            )
        ),
    ]
    # The banner says where both servers run; uvicorn's start and stop lines would only repeat
    # it, twice. Its warnings and errors (a port already taken) still show.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    print(banner(settings, sim_settings), flush=True)
    await asyncio.gather(*(server.serve() for server in servers))
