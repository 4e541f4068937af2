"""Charts of a benchmark run, drawn from its results JSON into PNGs beside it.

    python3 bench/charts.py bench/results/latest.json

`bench/run.py` calls this at the end of a run. Three charts, each named after the results file
(`latest-login-cpu.png` beside `latest.json`):

- `-login-cpu`: broker CPU ms per login, mobile and browser, against the number of accounts;
- `-login-latency`: p50 and p99 of the logins' broker side against the number of accounts;
- `-scale-out`: throughput and broker CPU ms per operation against the number of broker
  processes (mobile login, refresh rotation, `/api/v1/me`).

A chart whose figures the run did not take (one scale only, no scale-out) is still drawn with
the points there are; one with none is left out. Needs matplotlib (the `bench` extra).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

INSTALL_BENCH_EXTRA = (
    "install the bench extra: .venv/bin/pip install -e '.[bench]' --constraint requirements.lock"
)
LOGINS = {"mobile_login": "mobile login", "browser_login": "browser login"}
SCALE_OUT = {"mobile_login": "mobile login", "refresh": "refresh rotation", "me": "/api/v1/me"}
CHARTS = {
    "login-cpu": "Broker CPU per login by number of accounts",
    "login-latency": "Login latency (broker side) by number of accounts",
    "scale-out": "Throughput and CPU per operation by broker processes",
}


class ChartsUnavailable(Exception):
    """matplotlib is not installed."""


def chart_path(results: Path, chart: str) -> Path:
    return results.with_name(f"{results.stem}-{chart}.png")


def scale_out_rows(results: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Broker processes → the scenarios measured with that many, at the last scale: the
    scale-out runs and the main run (every scenario, at the last count of --workers)."""
    last = list(results["scales"].values())[-1]
    rows = {int(workers): scenarios for workers, scenarios in last.get("scale_out", {}).items()}
    rows[int(results["settings"]["workers"][-1])] = last["scenarios"]
    return dict(sorted(rows.items()))


def draw(results_path: Path) -> list[Path]:
    """Draw every chart the results have figures for; the PNGs written."""
    try:
        import matplotlib
    except ImportError:
        raise ChartsUnavailable(f"charts need matplotlib: {INSTALL_BENCH_EXTRA}") from None
    matplotlib.use("Agg")  # files only, never a display

    results = json.loads(results_path.read_text())
    written = []
    for chart, plot in (
        ("login-cpu", _login_cpu),
        ("login-latency", _login_latency),
        ("scale-out", _scale_out),
    ):
        path = chart_path(results_path, chart)
        if plot(results, path):
            written.append(path)
    return written


def _by_accounts(results: dict[str, Any], scenario: str) -> list[tuple[int, dict[str, Any]]]:
    return [
        (int(accounts), section["scenarios"][scenario])
        for accounts, section in results["scales"].items()
        if scenario in section["scenarios"]
    ]


Measure = tuple[str, str, Callable[[dict[str, Any]], float]]
"""A line of a chart by accounts: its label's suffix, its style, its figure of a result."""


def _login_cpu(results: dict[str, Any], path: Path) -> bool:
    cpu: Measure = ("", "-", lambda r: r["cpu_ms_per_op"])
    return _by_accounts_chart(results, path, "login-cpu", "broker CPU ms per login", [cpu])


def _login_latency(results: dict[str, Any], path: Path) -> bool:
    quantiles: list[Measure] = [(" p50", "-", _latency("p50")), (" p99", "--", _latency("p99"))]
    return _by_accounts_chart(results, path, "login-latency", "ms, broker side", quantiles)


def _latency(quantile: str) -> Callable[[dict[str, Any]], float]:
    return lambda r: float(r["broker_latency_ms"][quantile])


def _by_accounts_chart(
    results: dict[str, Any], path: Path, chart: str, ylabel: str, measures: list[Measure]
) -> bool:
    import matplotlib.pyplot as plt

    series = {label: _by_accounts(results, name) for name, label in LOGINS.items()}
    if not any(series.values()):
        return False
    figure, axes = plt.subplots(figsize=(7, 4.2))
    for index, (label, points) in enumerate(series.items()):
        for suffix, style, figure_of in measures:
            if points:
                axes.plot(
                    [accounts for accounts, _ in points],
                    [figure_of(r) for _, r in points],
                    style,
                    color=f"C{index}",  # one colour a login, the line's style its measure
                    marker="o",
                    label=label + suffix,
                )
    axes.set_xscale("log")
    axes.set_xlabel("accounts")
    axes.grid(True, which="both", alpha=0.3)
    axes.set_ylabel(ylabel)
    axes.set_ylim(bottom=0)
    workers = results["settings"]["workers"][-1]
    axes.set_title(
        f"{CHARTS[chart]}\n{workers} broker process(es), {results['machine']['cores']} CPUs"
    )
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def _scale_out(results: dict[str, Any], path: Path) -> bool:
    import matplotlib.pyplot as plt

    rows = scale_out_rows(results)
    names = [name for name in SCALE_OUT if any(name in row for row in rows.values())]
    if not names:
        return False
    figure, (throughput, cpu) = plt.subplots(1, 2, figsize=(10, 4.2))
    for name in names:
        points = [(workers, row[name]) for workers, row in rows.items() if name in row]
        processes = [workers for workers, _ in points]
        throughput.plot(
            processes, [r["throughput"] for _, r in points], marker="o", label=SCALE_OUT[name]
        )
        cpu.plot(
            processes, [r["cpu_ms_per_op"] for _, r in points], marker="o", label=SCALE_OUT[name]
        )
    for axes, label in ((throughput, "operations per second"), (cpu, "broker CPU ms per op")):
        axes.set_xlabel("broker processes")
        axes.set_xticks(list(rows))
        axes.set_ylabel(label)
        axes.set_yscale("log")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    cores = results["machine"]["cores"]
    figure.suptitle(
        f"{CHARTS['scale-out']} ({cores} CPUs shared with PostgreSQL, Redis and the load)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path, help="a results JSON written by bench/run.py")
    args = parser.parse_args()
    try:
        for path in draw(args.results):
            print(path)
    except ChartsUnavailable as error:
        raise SystemExit(str(error)) from None


if __name__ == "__main__":
    main()
