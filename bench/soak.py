"""Soak: the demo under load for N minutes; how fast the agent's memory and the store grow.

    python bench/soak.py --minutes N [--json] [--scenario steady] [--warmup 60] [--every 5]

Runs ``qbconsole demo --headless`` (the QuickBid platform and its load generator
as child processes, the agent in the demo process itself) on a temporary store,
and every ``--every`` seconds samples the RSS of the agent's process (not its
children) and the size of the store (the file plus its -wal). After
``--warmup`` seconds (caches filling, first rollups), the least-squares slope of
each gives the growth per hour:

- ``rss_growth_mb_per_h`` (target <= 5 MB/h), with ``rss_start_mb`` / ``rss_end_mb``, and
  ``rss_growth_last_half_mb_per_h`` over the second half of the samples only (a leak keeps
  its slope; caches that fill up, such as SQLite's page cache per connection, flatten out);
- ``store_growth_mb_per_h``, with ``store_end_mb`` and the sample rows at the end;
- ``cpu_percent_by_quarter``: the agent process's CPU share (percent of one core) in each
  quarter of the run, warm-up included: work that grows with the data held (windows
  filling, tables growing) shows as a rising figure.

Nothing is asserted; the figures are printed. Everything started is stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
TARGET_RSS_MB_PER_H = 5.0


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, in value per hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 3600.0


def store_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def sample_rows(db: Path) -> int | None:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT count(*) FROM samples").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def run(minutes: float, scenario: str, warmup: float, every: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="qb-soak-"))
    db = work / "soak.db"
    duration = minutes * 60
    log = open(work / "demo.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "qbconsole", "--db", str(db), "demo", "--headless",
                             "--duration", str(duration + 30), "--scenario", scenario],
                            cwd=work, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT)
    agent = psutil.Process(proc.pid)
    rss: list[tuple[float, float]] = []
    size: list[tuple[float, float]] = []
    cpu: list[tuple[float, float]] = []  # (elapsed s, CPU s of the agent process)
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < duration:
            if proc.poll() is not None:
                raise RuntimeError(f"the demo exited early with status {proc.returncode} (see {work}/demo.log)")
            rss.append((elapsed, agent.memory_info().rss / 2**20))
            size.append((elapsed, store_bytes(db) / 2**20))
            times = agent.cpu_times()
            cpu.append((elapsed, times.user + times.system))
            time.sleep(every - (time.monotonic() - started) % every)
        rows = sample_rows(db)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    steady_rss = [(t, v) for t, v in rss if t >= warmup]
    steady_size = [(t, v) for t, v in size if t >= warmup]
    result = {
        "minutes": minutes,
        "scenario": scenario,
        "warmup_s": warmup,
        "samples": len(steady_rss),
        "rss_start_mb": round(steady_rss[0][1], 1) if steady_rss else None,
        "rss_end_mb": round(rss[-1][1], 1) if rss else None,
        "rss_peak_mb": round(max(v for _, v in rss), 1) if rss else None,
        "rss_growth_mb_per_h": _round(slope_per_hour(steady_rss)),
        # the same over the last half only: a leak keeps its slope, caches filling up flatten out
        "rss_growth_last_half_mb_per_h": _round(slope_per_hour(steady_rss[len(steady_rss) // 2:])),
        "store_end_mb": round(size[-1][1], 2) if size else None,
        "store_growth_mb_per_h": _round(slope_per_hour(steady_size)),
        "sample_rows_end": rows,
        "cpu_percent_by_quarter": cpu_by_quarter(cpu),
        "demo_exit_status": proc.returncode,
        "target_rss_growth_mb_per_h": TARGET_RSS_MB_PER_H,
    }
    shutil.rmtree(work, ignore_errors=True)
    return result


def cpu_by_quarter(cpu: list[tuple[float, float]]) -> list[float]:
    """CPU share in percent of one core over each quarter of the (elapsed s, CPU s) samples."""
    if len(cpu) < 5:
        return []
    marks = [cpu[round(q * (len(cpu) - 1) / 4)] for q in range(5)]
    return [round(100.0 * (c1 - c0) / (t1 - t0), 2) if t1 > t0 else 0.0
            for (t0, c0), (t1, c1) in zip(marks, marks[1:])]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, required=True, help="how long the demo runs")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--scenario", default="steady", help="the load's scenario (default steady)")
    p.add_argument("--warmup", type=float, default=60.0, help="seconds left out of the slopes (default 60)")
    p.add_argument("--every", type=float, default=5.0, help="seconds between samples (default 5)")
    args = p.parse_args(argv)
    if args.minutes * 60 <= args.warmup + 3 * args.every:
        p.error("--minutes must leave room for samples after the warm-up")
    result = run(args.minutes, args.scenario, args.warmup, args.every)
    if args.json:
        print(json.dumps(result))
        return 0
    for key, value in result.items():
        verdict = ""
        if key in ("rss_growth_mb_per_h", "rss_growth_last_half_mb_per_h") and value is not None:
            verdict = "  ok" if value <= TARGET_RSS_MB_PER_H else f"  MISSED (target <= {TARGET_RSS_MB_PER_H})"
        print(f"{key:28} {value}{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
