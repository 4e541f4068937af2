"""Synthetic rows of the agency's account file, valid by construction, for the import tests."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

from vssid_broker.accounts.importing import COLUMNS


def person(index: int, **overrides: Any) -> dict[str, Any]:
    """The `index`-th synthetic person: Hà Nội (001), born 1980-1999, serials of their own."""
    gender = "female" if index % 2 else "male"
    born = date(1980 + index % 20, 1 + index % 12, 1 + index % 28)
    digit = 1 if gender == "female" else 0
    row = {
        "bhxh_code": f"01{40_000_000 + index:08d}",
        "citizen_id": f"001{digit}{born.year % 100:02d}{500_000 + index:06d}",
        "full_name": f"Nguyễn Thị Thử {index}" if gender == "female" else f"Trần Văn Thử {index}",
        "birth_date": born.isoformat(),
        "gender": gender,
        "phone": f"09{index % 100_000_000:08d}",
        "status": "active",
    }
    return row | overrides


def csv_text(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_csv(path: Path, rows: list[dict[str, Any]], *, gzipped: bool = False) -> Path:
    data = csv_text(rows).encode()
    path.write_bytes(gzip.compress(data) if gzipped else data)
    return path


def write_json_lines(path: Path, rows: list[dict[str, Any]], *, gzipped: bool = False) -> Path:
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    path.write_bytes(gzip.compress(data) if gzipped else data)
    return path
