"""The health-insurance card (thẻ BHYT) as the app shows it: its face as an image (PNG or
SVG) with the QR code clinics scan at reception.

The QR text follows the field order a hospital information system reads (docs/health-card.md
names the sources and where they disagree): thirteen fields separated by `|`, dates as
dd/mm/yyyy, text as plain UTF-8. No field may contain the separator, so a `|` in stored text
is written as `/`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

import segno
from PIL import Image, ImageDraw, ImageFont

from vssid_broker.accounts.models import Account, HealthInsuranceCard
from vssid_broker.errors import HealthCardAbsent, HealthCardExpired

FONTS = Path(__file__).parent / "fonts"
"""DejaVu Sans, shipped (licence beside it): every Vietnamese letter, on any machine."""

QR_SEPARATOR = "|"
SEX_CODES = {"male": "1", "female": "2"}
BENEFIT_PERCENT = {1: 100, 2: 100, 3: 95, 4: 80, 5: 100}
"""Mức hưởng (the card number's third character) → the share of costs the insurance pays."""


def usable_card(account: Account, today: date) -> HealthInsuranceCard:
    """The card to show, or the clear refusal: none recorded, or no longer valid."""
    card = account.health_card
    if card is None:
        raise HealthCardAbsent(f"account {account.id} has no health-insurance card")
    if card.valid_to is not None and card.valid_to < today:
        raise HealthCardExpired(f"card valid until {card.valid_to.isoformat()}")
    return card


def _dmy(day: date | None) -> str:
    return day.strftime("%d/%m/%Y") if day else ""


def _field(text: str | None) -> str:
    return (text or "").replace(QR_SEPARATOR, "/").strip()


def qr_text(account: Account, card: HealthInsuranceCard) -> str:
    """The QR code's content, field by field (index: meaning)."""
    facility = card.facility_code or ""
    fields = [
        card.card_code,  # 0: card number, 15 characters
        _field(account.full_name),  # 1: holder's full name
        _dmy(account.birth_date),  # 2: date of birth
        SEX_CODES.get(account.gender, ""),  # 3: sex, 1 male, 2 female
        _field(card.holder_address),  # 4: address
        facility.replace("-", " - "),  # 5: primary-care facility, "01 - 024"
        _dmy(card.valid_from),  # 6: valid from
        _dmy(card.valid_to),  # 7: valid to
        _dmy(card.issued_on),  # 8: issue date
        _field(card.managing_office_code),  # 9: managing social-insurance office
        "",  # 10: parent or guardian (children under 6): not kept by the broker
        _field(card.living_area),  # 11: K1/K2/K3 living-area code
        _dmy(card.five_years_from),  # 12: five continuous years from
    ]
    return QR_SEPARATOR.join(fields)


def qr_symbol(account: Account, card: HealthInsuranceCard) -> segno.QRCode:
    # Level M as printed cards use: a phone photo of a screen still scans; UTF-8 is declared
    # by ECI so a scanner never guesses Latin-1 for the name.
    return segno.make_qr(qr_text(account, card), error="m", encoding="utf-8", eci=True)


def qr_svg_for_screen(account: Account, card: HealthInsuranceCard) -> str:
    """The QR code alone, as an inline SVG that scales to the screen's width (the full-screen
    card view): one module per viewBox unit, a quiet zone of four modules as ISO/IEC 18004
    asks, so a counter scanner finds it on a phone held up to it."""
    return str(
        qr_symbol(account, card).svg_inline(
            scale=1, border=4, dark="#000000", light="#ffffff", omitsize=True
        )
    )


def qr_svg_file(account: Account, card: HealthInsuranceCard) -> str:
    """The same QR code as a file of its own (`/api/v1/me/health-card-qr.svg`), for the app's
    full-screen view."""
    out = io.BytesIO()
    qr_symbol(account, card).save(
        out, kind="svg", xmldecl=False, svgns=True, omitsize=True, border=4, dark="#000000",
        light="#ffffff",
    )  # fmt: skip
    return out.getvalue().decode()


@dataclass(frozen=True)
class FaceLine:
    label: str
    value: str
    under_qr: bool = False
    """Printed in the column under the QR code (the dates of issue and of five years)."""


def face_lines(account: Account, card: HealthInsuranceCard) -> list[FaceLine]:
    """What the card's face prints, in order."""
    level = card.benefit_level
    facility = card.primary_care_facility
    if card.facility_code:
        facility = f"{facility} ({card.facility_code})"
    validity = f"từ {_dmy(card.valid_from)}"
    if card.valid_to:
        validity += f" đến {_dmy(card.valid_to)}"
    lines = [
        FaceLine("Mã số", printed_card_number(card.card_code)),
        FaceLine("Họ và tên", account.full_name.upper()),
        FaceLine(
            "Ngày sinh · Giới tính",
            f"{_dmy(account.birth_date)} · {'Nam' if account.gender == 'male' else 'Nữ'}",
        ),
    ]
    if card.holder_address:
        lines.append(FaceLine("Địa chỉ", card.holder_address))
    lines += [
        FaceLine("Mức hưởng", f"{level} ({BENEFIT_PERCENT.get(level, 0)}%)"),
        FaceLine("Nơi đăng ký KCB ban đầu", facility),
        FaceLine("Giá trị sử dụng", validity),
    ]
    if card.issued_on:
        lines.append(FaceLine("Ngày cấp", _dmy(card.issued_on), under_qr=True))
    if card.five_years_from:
        lines.append(
            FaceLine("Thời điểm đủ 5 năm liên tục", _dmy(card.five_years_from), under_qr=True)
        )
    return lines


def printed_card_number(card_code: str) -> str:
    """`DN4010112345678` → `DN 4 01 0112345678`: group, level, province, BHXH code."""
    return f"{card_code[:2]} {card_code[2:3]} {card_code[3:5]} {card_code[5:]}"


# --- the image ---------------------------------------------------------------------------------
WIDTH, HEIGHT = 1012, 638  # the ID-1 card's proportions (85.6 × 54 mm) at 300 dpi
BAND = 118
MARGIN = 40
QR_SIZE = 300
QR_X, QR_Y = WIDTH - MARGIN - QR_SIZE, BAND + 24
TEXT_WIDTH = WIDTH - 2 * MARGIN - QR_SIZE - 30
BLUE, INK, MUTED, PAPER = "#0b5cab", "#1d2630", "#4b5763", "#f4f9ff"
TITLE = "THẺ BẢO HIỂM Y TẾ"
ISSUER = "BẢO HIỂM XÃ HỘI VIỆT NAM"


@cache
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(FONTS / name), size)


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and font.getlength(candidate) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    return [*lines, current] if current else lines


@dataclass(frozen=True)
class PlacedText:
    x: int
    y: int
    text: str
    size: int
    bold: bool
    color: str


def layout(account: Account, card: HealthInsuranceCard) -> list[PlacedText]:
    """Where every piece of text goes; the PNG and the SVG draw the same layout."""
    placed = [
        PlacedText(MARGIN, 30, ISSUER, 24, False, "#ffffff"),
        PlacedText(MARGIN, 62, TITLE, 38, True, "#ffffff"),
    ]
    lines = face_lines(account, card)
    columns = (
        (MARGIN, BAND + 20, TEXT_WIDTH, [line for line in lines if not line.under_qr]),
        (QR_X, QR_Y + QR_SIZE + 12, QR_SIZE, [line for line in lines if line.under_qr]),
    )
    for x, y, width, column in columns:
        for line in column:
            placed.append(PlacedText(x, y, line.label, 18, False, MUTED))
            y += 22
            for part in _wrap(line.value, _font(22, True), width):
                placed.append(PlacedText(x, y, part, 22, True, INK))
                y += 27
            y += 6
    return placed


def render_png(account: Account, card: HealthInsuranceCard) -> bytes:
    image = Image.new("RGB", (WIDTH, HEIGHT), PAPER)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH, BAND), fill=BLUE)
    for text in layout(account, card):
        draw.text((text.x, text.y), text.text, font=_font(text.size, text.bold), fill=text.color)
    qr = qr_symbol(account, card)
    scale = QR_SIZE // qr.symbol_size(border=2)[0]  # whole pixels per module: crisp edges
    qr_png = io.BytesIO()
    qr.save(qr_png, kind="png", scale=scale, border=2)
    qr_image = Image.open(qr_png).convert("RGB")
    offset = (QR_SIZE - qr_image.width) // 2
    image.paste(qr_image, (QR_X + offset, QR_Y + offset))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=6)
    return out.getvalue()


def render_svg(account: Account, card: HealthInsuranceCard) -> str:
    qr_svg = qr_symbol(account, card).svg_inline(
        scale=1, border=2, dark="#000000", light="#ffffff", omitsize=True
    )
    # The QR as a nested <svg> placed and sized on the card; its viewBox keeps modules square.
    qr_svg = qr_svg.replace(
        "<svg ", f'<svg x="{QR_X}" y="{QR_Y}" width="{QR_SIZE}" height="{QR_SIZE}" ', 1
    )
    texts = "\n".join(
        f'<text x="{t.x}" y="{t.y + t.size}" font-size="{t.size}" fill="{t.color}"'
        f' font-weight="{"bold" if t.bold else "normal"}">{escape(t.text)}</text>'
        for t in layout(account, card)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="card-title">\n'
        f'<title id="card-title">{escape(TITLE)} – {escape(account.full_name)}</title>\n'
        '<style>text { font-family: "DejaVu Sans", "Noto Sans", Arial, sans-serif; }</style>\n'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="{PAPER}"/>\n'
        f'<rect width="{WIDTH}" height="{BAND}" fill="{BLUE}"/>\n'
        f"{texts}\n"
        f"{qr_svg}\n"
        "</svg>\n"
    )
