"""Reading the agency's account file: what `vssid-broker accounts import` takes in.

The file is CSV with a header row or JSON Lines, either optionally gzip-compressed (told by its
first two bytes, not its name: a file read from standard input has none). Its columns:
`bhxh_code`, `citizen_id` (may be empty), `full_name`, `birth_date` (ISO 8601 or dd/mm/yyyy),
`gender`, `phone` (may be empty), `status` (docs/accounts-import.md).

Two kinds of trouble, kept apart:

- a **bad row** (a field that breaks a rule) becomes a `RejectedRow`, with its line, field and
  a stable reason code; the run goes on;
- a **bad file** (neither format, a column missing or unknown, bytes that are not UTF-8, a NUL
  byte, a line longer than `MAX_LINE_BYTES`, a gzip stream cut short) raises `ImportFileError`
  with one line naming where: nothing of the file may be merged then.

The reader streams: one line in memory at a time, whatever the file's size. Rows come out with
the citizen ID already sealed and blind-indexed (`sealing`), the form every table keeps it in,
so the plain number goes no further than this module. It is sealed for where it ends up,
`accounts.citizen_id_sealed` of its BHXH code (`ACCOUNT_CITIZEN_ID`): the merge copies it
there unchanged, and the staging table only carries it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from vssid_broker import sealing
from vssid_broker.accounts.models import ACCOUNT_CITIZEN_ID
from vssid_broker.errors import CommandRefused
from vssid_broker.identifiers import (
    bhxh_code_problem,
    citizen_id_problem,
    mask_bhxh_code,
    normalized_name,
    searchable_name,
    vietnamese_mobile,
)

COLUMNS = ("bhxh_code", "citizen_id", "full_name", "birth_date", "gender", "phone", "status")
STATUSES = frozenset({"active", "locked", "closed"})
GENDERS = frozenset({"male", "female"})
MAX_LINE_BYTES = 64 * 1024
"""A row of seven short fields is under 300 bytes; a line this long is not a row of ours."""
MAX_NAME_LENGTH = 200
EARLIEST_BIRTH = date(1900, 1, 1)
_GZIP_MAGIC = b"\x1f\x8b"


class ImportFileError(CommandRefused):
    """The file cannot be imported as a whole: one line saying why and where."""


@dataclass(frozen=True)
class AccountRow:
    """A valid row, as the accounts table will keep it."""

    line: int
    bhxh_code: str
    citizen_id_sealed: str | None
    citizen_id_index: str | None
    full_name: str
    name_key: str
    search_key: str
    birth_date: date
    gender: str
    phone: str | None
    status: str

    def record(self, run_id: int) -> tuple[Any, ...]:
        """The row of `account_import_rows` (in `STAGED_COLUMNS` order)."""
        return (
            run_id, self.line, self.bhxh_code, self.citizen_id_sealed, self.citizen_id_index,
            self.full_name, self.name_key, self.search_key, self.birth_date, self.gender,
            self.phone, self.status,
        )  # fmt: skip


STAGED_COLUMNS = (
    "run_id", "line", "bhxh_code", "citizen_id_sealed", "citizen_id_index", "full_name",
    "name_key", "search_key", "birth_date", "gender", "phone", "status",
)  # fmt: skip


@dataclass(frozen=True)
class RejectedRow:
    """A row that breaks a rule. `bhxh_code` is masked: the report holds no full identifier."""

    line: int
    field: str
    reason: str
    bhxh_code: str = ""

    @property
    def code(self) -> str:
        """The reason as counted in the summary: `<field>.<reason>`."""
        return f"{self.field}.{self.reason}"


class _RowProblem(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}.{reason}")
        self.field, self.reason = field, reason


class _Digesting(io.RawIOBase):
    """The file's bytes as they are read, SHA-256 kept of them (what the audit records)."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self.digest = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        self.digest.update(data)
        self.bytes_read += len(data)
        buffer[: len(data)] = data
        return len(data)


class AccountFile:
    """One file's rows, read once, in order: iterate over it for `AccountRow`s and
    `RejectedRow`s; `digest` is the SHA-256 of what was read, once the rows are all out."""

    def __init__(self, source: IO[bytes], *, today: date) -> None:
        self._digesting = _Digesting(source)
        self._today = today
        self.rows_read = 0

    @property
    def digest(self) -> str:
        return self._digesting.digest.hexdigest()

    @property
    def bytes_read(self) -> int:
        return self._digesting.bytes_read

    def __iter__(self) -> Iterator[AccountRow | RejectedRow]:
        buffered = io.BufferedReader(self._digesting, buffer_size=1 << 20)
        gzipped = buffered.peek(2)[:2] == _GZIP_MAGIC
        stream: IO[bytes] = gzip.GzipFile(fileobj=buffered) if gzipped else buffered  # type: ignore[assignment]
        lines = _Lines(stream, gzipped)
        first = lines.peek_first()
        if first is None:
            raise ImportFileError("the file is empty: no header row and no JSON line")
        json_lines = first.lstrip().startswith("{")
        records = _json_lines(lines) if json_lines else _csv_rows(lines)
        for line, values in records:
            self.rows_read += 1
            yield self._checked(line, values)
        buffered.read()  # the digest covers the whole file, trailing bytes included

    def _checked(self, line: int, values: dict[str, Any]) -> AccountRow | RejectedRow:
        try:
            return _valid_row(line, values, self._today)
        except _RowProblem as problem:
            code = values.get("bhxh_code")
            return RejectedRow(
                line,
                problem.field,
                problem.reason,
                mask_bhxh_code(code) if isinstance(code, str) else "",
            )


class _Lines:
    """The decoded lines of the file with their numbers; the file errors that lines can show."""

    def __init__(self, stream: IO[bytes], gzipped: bool) -> None:
        self._stream = stream
        self._gzipped = gzipped
        self._pending: str | None = None
        self.number = 0

    def _read(self) -> str | None:
        try:
            raw = self._stream.readline(MAX_LINE_BYTES + 1)
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise ImportFileError(
                f"the gzip stream is cut short or corrupt after line {self.number}"
            ) from error
        if not raw:
            return None
        self.number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise ImportFileError(
                f"line {self.number} is longer than {MAX_LINE_BYTES // 1024} KiB: not an "
                "account row (is this the right file?)"
            )
        if b"\x00" in raw:
            raise ImportFileError(f"line {self.number} holds a NUL byte: not a text file")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ImportFileError(
                f"line {self.number} is not UTF-8 (byte {error.start + 1}); export the file "
                "as UTF-8"
            ) from None
        if self.number == 1:
            text = text.removeprefix("\ufeff")  # a byte-order mark some exports write
        return text

    def peek_first(self) -> str | None:
        self._pending = self._read()
        return self._pending

    def __iter__(self) -> Iterator[str]:
        if self._pending is not None:
            yield self._pending
            self._pending = None
        while (text := self._read()) is not None:
            yield text


def _check_columns(names: list[str]) -> None:
    missing = [name for name in COLUMNS if name not in names]
    unknown = [name for name in names if name not in COLUMNS]
    if len(unknown) == len(names):
        raise ImportFileError(
            "not a CSV file with a header row of account columns nor JSON Lines "
            f"(expected the columns {', '.join(COLUMNS)})"
        )
    if unknown:
        raise ImportFileError(f"unknown column(s): {', '.join(unknown[:5])}")
    if missing:
        raise ImportFileError(f"missing column(s): {', '.join(missing)}")
    if len(set(names)) != len(names):
        raise ImportFileError("a column is named twice in the header row")


def _csv_rows(lines: _Lines) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(lines, strict=True)
    try:
        header = [name.strip() for name in next(reader)]
        _check_columns(header)
        while True:
            try:
                fields = next(reader)
            except csv.Error:
                # An unbalanced quote: this line only; the reader starts afresh at the next.
                yield lines.number, {"__csv__": "quoting"}
                continue
            except StopIteration:
                return
            if not fields or fields == [""]:
                continue  # a blank line
            if len(fields) != len(header):
                yield lines.number, {"__csv__": "field_count"}
                continue
            yield lines.number, dict(zip(header, fields, strict=True))
    except csv.Error as error:
        raise ImportFileError(f"line {lines.number} is not CSV: {error}") from None


def _json_lines(lines: _Lines) -> Iterator[tuple[int, dict[str, Any]]]:
    for text in lines:
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except ValueError:
            yield lines.number, {"__json__": "not_json"}
            continue
        if not isinstance(value, dict):
            yield lines.number, {"__json__": "not_an_object"}
            continue
        yield lines.number, value


def _text(values: dict[str, Any], field: str, *, optional: bool = False) -> str | None:
    if field not in values:
        raise _RowProblem(field, "missing")
    value = values[field]
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise _RowProblem(field, "empty")
    if not isinstance(value, str):
        raise _RowProblem(field, "not_text")
    return value.strip()


def _birth_date(text: str, today: date) -> date:
    try:
        born = (
            datetime.strptime(text, "%d/%m/%Y").date() if "/" in text else date.fromisoformat(text)
        )
    except ValueError:
        raise _RowProblem("birth_date", "not_a_date") from None
    if born > today:
        raise _RowProblem("birth_date", "in_the_future")
    if born < EARLIEST_BIRTH:
        raise _RowProblem("birth_date", "before_1900")
    return born


def _valid_row(line: int, values: dict[str, Any], today: date) -> AccountRow:
    if "__csv__" in values:
        raise _RowProblem("line", values["__csv__"])
    if "__json__" in values:
        raise _RowProblem("line", values["__json__"])
    unknown = sorted(set(values) - set(COLUMNS))
    if unknown:
        raise _RowProblem(unknown[0][:40], "unknown_column")
    code = _text(values, "bhxh_code") or ""
    if problem := bhxh_code_problem(code):
        raise _RowProblem("bhxh_code", problem)
    raw_name = _text(values, "full_name") or ""
    full_name = " ".join(unicodedata.normalize("NFC", raw_name).split())
    if len(full_name) > MAX_NAME_LENGTH:
        raise _RowProblem("full_name", "too_long")
    if any(unicodedata.category(char).startswith("C") for char in full_name):
        raise _RowProblem("full_name", "control_character")
    born = _birth_date(_text(values, "birth_date") or "", today)
    gender = (_text(values, "gender") or "").lower()
    if gender not in GENDERS:
        raise _RowProblem("gender", "unknown")
    citizen_id = _text(values, "citizen_id", optional=True)
    if citizen_id is not None and (problem := citizen_id_problem(citizen_id, born, gender)):
        raise _RowProblem("citizen_id", problem)
    raw_phone = _text(values, "phone", optional=True)
    phone = None if raw_phone is None else vietnamese_mobile(raw_phone)
    if raw_phone is not None and phone is None:
        raise _RowProblem("phone", "not_a_vietnamese_mobile")
    status = (_text(values, "status") or "").lower()
    if status not in STATUSES:
        raise _RowProblem("status", "unknown")
    keys = sealing.installed()
    return AccountRow(
        line=line,
        bhxh_code=code,
        citizen_id_sealed=None
        if citizen_id is None
        else keys.seal(citizen_id, ACCOUNT_CITIZEN_ID.of(code)),
        citizen_id_index=None if citizen_id is None else keys.index(citizen_id),
        full_name=full_name,
        name_key=normalized_name(full_name),
        search_key=searchable_name(full_name),
        birth_date=born,
        gender=gender,
        phone=phone,
        status=status,
    )
