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

The reader streams, whatever the file's size: the file is cut into slices of whole lines
(`AccountFile.slices`, a few MiB each) that any process can check (`read_slice`), so on
PostgreSQL several worker processes check and stage them at once. Rows come out with
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
import re
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
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
_COLUMN_SET = frozenset(COLUMNS)
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


@dataclass(frozen=True)
class Layout:
    """What the head of the file says about the rest: JSON Lines, or CSV with this header."""

    json_lines: bool
    header: tuple[str, ...] = ()


@dataclass(frozen=True)
class Slice:
    """Whole lines of the file, the first of them line `first_line`: what one worker checks."""

    data: bytes
    first_line: int


SLICE_BYTES = 4 << 20
"""The file is handed to the workers in slices of about this many bytes (about 40,000 rows, a
second or two of a worker's time): large enough that a slice costs a worker far more than
handing it over, small enough that the slices in flight and a worker's lines of one slice stay
a few tens of MiB whatever the file's size."""


class AccountFile:
    """One file, read once, in order, as `Slice`s of whole lines (`slices`), after its head was
    checked (`open`); `read_slice` turns a slice into `AccountRow`s and `RejectedRow`s, in
    whichever process. `digest` is the SHA-256 of what was read, once the slices are all out.
    Iterating over the file itself gives its rows in this process."""

    def __init__(self, source: IO[bytes], *, today: date, slice_bytes: int = SLICE_BYTES) -> None:
        self._digesting = _Digesting(source)
        self._today = today
        self._slice_bytes = slice_bytes
        self._stream: IO[bytes] | None = None
        self._buffered: io.BufferedReader[_Digesting] | None = None
        self._carry = b""
        self._next_line = 1
        self.layout: Layout | None = None

    @property
    def digest(self) -> str:
        return self._digesting.digest.hexdigest()

    @property
    def bytes_read(self) -> int:
        return self._digesting.bytes_read

    def open(self) -> Layout:
        """Read and check the head of the file: its format and, for CSV, the header row."""
        buffered = io.BufferedReader(self._digesting, buffer_size=1 << 20)
        gzipped = buffered.peek(2)[:2] == _GZIP_MAGIC
        stream: IO[bytes] = gzip.GzipFile(fileobj=buffered) if gzipped else buffered  # type: ignore[assignment]
        self._buffered, self._stream = buffered, stream
        lines = _Lines(stream)
        first = lines.peek_first()
        if first is None:
            raise ImportFileError("the file is empty: no header row and no JSON line")
        if first.lstrip().startswith("{"):
            self.layout = Layout(json_lines=True)
            self._carry, self._next_line = first.encode(), 1
            return self.layout
        try:
            header = next(csv.reader([first], strict=True))
        except csv.Error as error:
            raise ImportFileError(f"line 1 is not CSV: {error}") from None
        names = [name.strip() for name in header]
        _check_columns(names)
        self.layout = Layout(json_lines=False, header=tuple(names))
        self._next_line = 2
        return self.layout

    def slices(self) -> Iterator[Slice]:
        """The rest of the file in slices of whole lines. A line too long to be a row, or a
        gzip stream cut short, raises `ImportFileError` once the slices before it are out."""
        assert self._stream is not None and self._buffered is not None, "open() first"
        while True:
            try:
                block = self._stream.read(self._slice_bytes)
            except (EOFError, gzip.BadGzipFile, zlib.error) as error:
                lines = self._next_line - 1 + self._carry.count(b"\n")
                raise ImportFileError(
                    f"the gzip stream is cut short or corrupt after line {lines}"
                ) from error
            if not block:
                if self._carry:
                    yield Slice(self._carry, self._next_line)
                    self._next_line += self._carry.count(b"\n") + 1
                    self._carry = b""
                break
            data = self._carry + block if self._carry else block
            cut = data.rfind(b"\n") + 1
            piece, self._carry = data[:cut], data[cut:]
            if piece:
                yield Slice(piece, self._next_line)
                self._next_line += piece.count(b"\n")
            if len(self._carry) > MAX_LINE_BYTES:
                raise _too_long(self._next_line)
        self._buffered.read()  # the digest covers the whole file, trailing bytes included

    def __iter__(self) -> Iterator[AccountRow | RejectedRow]:
        layout = self.open()
        for piece in self.slices():
            yield from read_slice(layout, piece, self._today)


def _too_long(line: int) -> ImportFileError:
    return ImportFileError(
        f"line {line} is longer than {MAX_LINE_BYTES // 1024} KiB: not an account row (is "
        "this the right file?)"
    )


def read_slice(layout: Layout, piece: Slice, today: date) -> Iterator[AccountRow | RejectedRow]:
    """The rows of one slice, checked. A file error in it (a line too long, a NUL byte, bytes
    that are not UTF-8) raises `ImportFileError` naming the first such line, before any row."""
    lines = _slice_lines(piece)
    records = _json_lines(lines) if layout.json_lines else _csv_rows(lines, layout.header)
    for line, values in records:
        try:
            yield _valid_row(line, values, today)
        except _RowProblem as problem:
            code = values.get("bhxh_code")
            yield RejectedRow(
                line,
                problem.field,
                problem.reason,
                mask_bhxh_code(code) if isinstance(code, str) else "",
            )


class _NumberedLines:
    """Decoded lines with the number of the one last given (`number`)."""

    def __init__(self, texts: list[str], first_line: int) -> None:
        self._texts = texts
        self.number = first_line - 1

    def __iter__(self) -> Iterator[str]:
        for text in self._texts:
            self.number += 1
            yield text


def _slice_lines(piece: Slice) -> _NumberedLines:
    """Check the slice's bytes as a whole (C speed) and split it into lines; the first line
    that breaks a file rule raises, as reading line by line would have found it."""
    data, first = piece.data, piece.first_line
    raws = data.split(b"\n")
    if data.endswith(b"\n"):
        raws.pop()
    problems: list[tuple[int, int, str]] = []
    if max(map(len, raws), default=0) >= MAX_LINE_BYTES:
        at = next(i for i, raw in enumerate(raws) if len(raw) >= MAX_LINE_BYTES)
        problems.append((first + at, 0, str(_too_long(first + at))))
    if (nul := data.find(b"\x00")) >= 0:
        at = first + data.count(b"\n", 0, nul)
        problems.append((at, 1, f"line {at} holds a NUL byte: not a text file"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        at = first + data.count(b"\n", 0, error.start)
        byte = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        problems.append((at, 2, f"line {at} is not UTF-8 (byte {byte}); export the file as UTF-8"))
    if problems:
        raise ImportFileError(min(problems)[2])
    del raws
    texts = text.split("\n")
    if data.endswith(b"\n"):
        texts.pop()
    return _NumberedLines(texts, first)


class _Lines:
    """The first line of the file, checked as every line is (see `_slice_lines`)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def peek_first(self) -> str | None:
        try:
            raw = self._stream.readline(MAX_LINE_BYTES + 1)
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise ImportFileError("the gzip stream is cut short or corrupt after line 0") from error
        if not raw:
            return None
        if len(raw) > MAX_LINE_BYTES:
            raise _too_long(1)
        if b"\x00" in raw:
            raise ImportFileError("line 1 holds a NUL byte: not a text file")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ImportFileError(
                f"line 1 is not UTF-8 (byte {error.start + 1}); export the file as UTF-8"
            ) from None
        return text.removeprefix("\ufeff")  # a byte-order mark some exports write


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


def _csv_rows(
    lines: _NumberedLines, header: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(lines, strict=True)
    try:
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


def _json_lines(lines: _NumberedLines) -> Iterator[tuple[int, dict[str, Any]]]:
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


_AGENCY_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
"""dd/mm/yyyy as the agency's exports write it (what strptime's %d/%m/%Y takes, at a fraction
of its cost: this runs for every row)."""


def _birth_date(text: str, today: date) -> date:
    try:
        if "/" in text:
            if (parts := _AGENCY_DATE.fullmatch(text)) is None:
                raise ValueError(text)
            born = date(int(parts[3]), int(parts[2]), int(parts[1]))
        else:
            born = date.fromisoformat(text)
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
    if not values.keys() <= _COLUMN_SET:  # a CSV row's keys are the checked header's
        unknown = sorted(set(values) - _COLUMN_SET)
        raise _RowProblem(unknown[0][:40], "unknown_column")
    code = _text(values, "bhxh_code") or ""
    if problem := bhxh_code_problem(code):
        raise _RowProblem("bhxh_code", problem)
    raw_name = _text(values, "full_name") or ""
    full_name = " ".join(unicodedata.normalize("NFC", raw_name).split())
    if len(full_name) > MAX_NAME_LENGTH:
        raise _RowProblem("full_name", "too_long")
    # Spaces are collapsed above, so a character that is not printable is a control, format,
    # private-use or unassigned one (category C); the exact test only for those names.
    if not full_name.isprintable() and any(
        unicodedata.category(char).startswith("C") for char in full_name
    ):
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
