"""The command an operator types: standard input, the summary, one line for a bad file."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

from tests.accounts.account_files import csv_text, person
from tests.test_cli import COMMAND, cli_env


def import_command(
    tmp_path: Path, *args: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    env = cli_env(tmp_path)
    subprocess.run([COMMAND, "migrate"], env=env, cwd=tmp_path, check=True, capture_output=True)  # noqa: S603
    return subprocess.run(  # noqa: S603 - our own command
        [COMMAND, "accounts", "import", *args],
        env=env, cwd=tmp_path, input=stdin.decode("latin-1"), capture_output=True, text=True,
        encoding="latin-1", timeout=120, check=False,
    )  # fmt: skip


def test_a_gzip_file_on_standard_input_imports_and_the_summary_says_what_happened(
    tmp_path: Path,
) -> None:
    rows = [person(0), person(1), person(2, phone="12345")]
    done = import_command(tmp_path, "-", stdin=gzip.compress(csv_text(rows).encode()))

    assert done.returncode == 0, done.stderr
    assert "added 2, updated 0, unchanged 0" in done.stdout
    assert "phone.not_a_vietnamese_mobile: 1" in done.stdout
    report = (tmp_path / "accounts-import.rejects.csv").read_text(encoding="utf-8")
    assert report.splitlines()[1].startswith("4,phone,not_a_vietnamese_mobile,")


def test_a_bad_file_is_one_line_on_standard_error_and_exit_status_1(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(csv_text([person(0)]).encode() + "Lê Hà\n".encode("latin-1"))

    done = import_command(tmp_path, str(path))

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "line 3 is not UTF-8 (byte 2); export the file as UTF-8"
    ]
    assert "Traceback" not in done.stderr
