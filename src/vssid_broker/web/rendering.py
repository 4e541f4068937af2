"""The broker's Jinja templates, shared by the pages and the error handler."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates

from vssid_broker.linking.consent import claims_in_words

VIETNAM_TIME = ZoneInfo("Asia/Ho_Chi_Minh")
"""Where the people and the clerks who read these pages are: every time a page shows is in
Vietnam's time (UTC+7, no daylight saving). The APIs keep UTC, with its offset."""


def local_time(moment: datetime | None, pattern: str = "%d/%m/%Y %H:%M") -> str:
    """`{{ moment | local_time }}`: a stored instant as a clock in Vietnam reads it. A naive
    value is UTC (SQLite returns stored instants without their zone)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(VIETNAM_TIME).strftime(pattern)


LINK_METHOD_WORDS = {
    "citizen_id_match": "tự động, theo số định danh cá nhân",
    "staff_review": "do cán bộ BHXH xác nhận",
    "password_proof": "bằng mật khẩu VssID của người dân",
}
"""How a link was made, as the person's page and the console say it."""


def actor_words(actor: str | None) -> str:
    """Who did something, as the audit trail names them ("staff:thu", "system", "person",
    "operator:root", "import:12"), said in words: "cán bộ thu", "hệ thống (tự động)"…"""
    if not actor:
        return ""
    kind, _, name = actor.partition(":")
    match kind:
        case "staff":
            return f"cán bộ {name}"
        case "person":
            return "người dân"
        case "system":
            return "hệ thống (tự động)"
        case "operator":
            return f"người vận hành máy chủ ({name})"
        case "import":
            return f"lần nhập dữ liệu số {name}"
    return "khác"


def number(value: int) -> str:
    """`{{ n | number }}`: 1.234.567, grouped the Vietnamese way (a comma marks decimals)."""
    return f"{value:,}".replace(",", ".")


templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["local_time"] = local_time
templates.env.filters["claims_in_words"] = claims_in_words
templates.env.filters["actor_words"] = actor_words
templates.env.filters["number"] = number
templates.env.filters["link_method_words"] = lambda method: LINK_METHOD_WORDS.get(method, method)
