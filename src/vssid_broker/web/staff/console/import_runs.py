"""The accounts import runs in the console (admins only): the newest runs and their counts."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from vssid_broker.admin import account_import
from vssid_broker.web.deps import Ctx
from vssid_broker.web.staff.console.base import SignedIn, console_router, page

router = console_router()
RUN_STATUS_LABELS = {
    "running": "Đang chạy",
    "completed": "Hoàn tất",
    "failed": "Dừng vì lỗi tệp",
    "interrupted": "Bị ngắt",
    "dry_run": "Chạy thử",
}
FIELD_WORDS = {
    "bhxh_code": "Mã số BHXH",
    "citizen_id": "Số định danh",
    "full_name": "Họ và tên",
    "birth_date": "Ngày sinh",
    "gender": "Giới tính",
    "phone": "Số điện thoại",
    "status": "Trạng thái",
    "line": "Dòng",
}
PROBLEM_WORDS = {
    "missing": "thiếu",
    "empty": "để trống",
    "not_text": "không phải chữ",
    "format": "sai định dạng",
    "province_prefix": "mã tỉnh không đúng",
    "place_code": "mã nơi đăng ký khai sinh không đúng",
    "century_gender_digit": "chữ số thế kỷ, giới tính không khớp",
    "birth_year": "năm sinh không khớp",
    "too_long": "quá dài",
    "control_character": "có ký tự điều khiển",
    "not_a_date": "không phải ngày",
    "in_the_future": "ở tương lai",
    "before_1900": "trước năm 1900",
    "unknown": "không hợp lệ",
    "not_a_vietnamese_mobile": "không phải số di động Việt Nam",
    "repeated_in_file": "trùng với một dòng trước trong tệp",
    "held_by_another_account": "đã thuộc tài khoản khác",
    "not_json": "không phải JSON",
    "not_an_object": "không phải một đối tượng JSON",
    "quoting": "sai dấu ngoặc kép",
    "field_count": "sai số cột",
    "unknown_column": "cột không có trong định dạng",
}
"""The rejection reasons of docs/accounts-import.md (`<field>.<problem>`), in words; the code
itself stays beside them, as the rejected-rows report names it."""


def rejection_in_words(code: str) -> str:
    field, _, problem = code.partition(".")
    if problem == "unknown_column":  # the field is the file's own column name
        return f"Cột không có trong định dạng: {field}"
    return f"{FIELD_WORDS.get(field, 'Cột khác')}: {PROBLEM_WORDS.get(problem, 'không hợp lệ')}"


@router.get("/import-runs", response_class=HTMLResponse)
async def import_runs_page(request: Request, ctx: Ctx, console: SignedIn) -> Response:
    console.require(account_import.SEES_IMPORT_RUNS)
    async with ctx.db() as session:
        runs, total = await account_import.list_runs(session, limit=50)
    return page(
        request, "import_runs.html", console, runs=runs, total=total,
        run_status_labels=RUN_STATUS_LABELS, rejection_in_words=rejection_in_words,
    )  # fmt: skip
