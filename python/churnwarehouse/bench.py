"""Benchmark: the full ``dbt build`` at several sizes, beside a pandas baseline and DuckDB's floor.

    python -m churnwarehouse.bench [--sizes 10000 100000 1000000] [--seed 42] [--cache bench/cache]
                                   [--out bench/results.csv] [--no-pandas] [--no-daily]

For each size (customers), measured the same way every time:

1. **Data.** The project's generator writes the raw files once per (size, seed) into
   ``<cache>/<size>/raw``; later runs reuse them (the generator is deterministic).
2. **Full build.** ``dbt build`` (every model and test, the churn model trained from scratch in a
   fresh registry) into a fresh DuckDB file, as a subprocess. Wall time, and peak memory of the
   whole process tree: the sum of the resident set sizes of dbt and its descendants, sampled
   every 50 ms from ``/proc``. Per-model times come from dbt's ``run_results.json``;
   ``features_s`` is the time of the feature models (``models/intermediate/customers`` and
   ``ml_customer_features``), ``features_sql_s`` that of the SQL ones (without the review-sentiment
   and BG/NBD Python models).
3. **Floor.** What DuckDB needs just to read the data: one scan that aggregates orders and
   events by customer (count, sum, max), from the raw files, with the same threads and memory
   cap as the build; the fastest of ``FLOOR_REPEATS`` such scans.
4. **pandas.** ``churnwarehouse.pandas_features`` computes the same order and browsing feature
   tables as the dbt models ``int_customer_order_features`` and ``int_customer_browsing_features``
   from the same staged inputs (a pytest proves the outputs equal), in a subprocess of its own.
   ``pandas_s`` is its load + compute time; ``ours_equal_s`` is those two models' time in the
   build. Equal work on both sides, so ``pandas_vs_ours`` means something.
5. **Feature models alone.** In the build, dbt runs two models at a time on two cores, so a
   feature model's time includes waiting for the CPU the other model holds, while the floor and
   pandas run alone. For equal conditions the feature models are run once more on the built
   warehouse, one at a time (``dbt run --threads 1``, the review-sentiment cache cleared so it
   refits as in the build): ``features_alone_s``, ``features_sql_alone_s`` and
   ``ours_equal_alone_s``, and their ratios to the floor and to pandas. The in-build figures stay
   in the table beside them.
6. **Daily run.** One more day of data (the raw files cut one day later than the full build's
   cut) and an incremental ``dbt build`` on top of the full build, with the daily job's vars
   (``DAILY_VARS``, ``DAILY_ARGS``): ``daily_s`` beside the full build's time (``daily_vs_full``). The full
   build runs on the data cut one day before its end. As in a scheduled job, the raw folder
   is the same one (its files now hold one more day) and the daily job's target folder holds
   its previous parse (an untimed ``dbt parse`` with the daily vars), so dbt re-parses only
   what changed. What the daily run is made of: its staging, feature, Python-model and test
   time (``daily_staging_s`` ...), and ``daily_scoring_s``, the elapsed time from the start
   of ``ml_customer_features`` to the end of the last model (the features mart, the
   registry, ``churn_scores`` and drift, each waiting for the one before: the rescoring of
   every scoring customer that a daily run cannot avoid).

It prints a table and writes one CSV line per size to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import duckdb

from churnwarehouse.cut import cut_raw_directory

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
FEATURE_MODEL_DIRS = ("models/intermediate/customers/",)
FEATURE_MART_MODELS = ("ml_customer_features",)
EQUAL_WORK_MODELS = ("int_customer_order_features", "int_customer_browsing_features")
#: What the README recommends for the daily job: the large staging tables' key and relationship
#: tests read the recently staged rows (macros/test_window.sql); the full build tests every row.
DAILY_VARS = {"test_window_days": 3}
#: ... and it leaves out the unit tests, as dbt's documentation advises for production runs: their
#: inputs are fixed rows, so they check the code (in development and CI), not the day's data.
DAILY_ARGS = ("--exclude-resource-type", "unit_test")


class BenchError(RuntimeError):
    """A benchmark step failed (its output is in the message)."""


@dataclass
class Measured:
    wall_s: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def _tree_rss_bytes(root_pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as handle:
                resident_pages = int(handle.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = resident_pages * page
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measure(cmd: list[str], env: dict[str, str], cwd: Path = REPO, interval_s: float = 0.05) -> Measured:
    """Run a command; wall time and the peak resident memory of its whole process tree."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_bytes(proc.pid))
            done.wait(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    return Measured(wall, peak / 2**20, proc.returncode, stdout, stderr)


def dbt_env(db_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CHURN_DUCKDB_PATH": str(db_path),
        "DBT_PROFILES_DIR": str(REPO),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PYTHONPATH": str(REPO / "python"),
    }


def dbt_build(workdir: Path, db_path: Path, dbt_vars: dict, *extra: str, command: str = "build"
              ) -> tuple[Measured, list[dict]]:
    """``dbt build`` (or another ``command``) from the repo root into ``db_path``; its measurement
    and run results."""
    target = workdir / "target"
    cmd = [str(BIN / "dbt"), command, "--vars", json.dumps(dbt_vars), "--target-path", str(target),
           "--log-path", str(workdir / "logs"), *extra]
    run = measure(cmd, dbt_env(db_path))
    if run.returncode != 0:
        raise BenchError(f"dbt {command} failed in {workdir}:\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}")
    if command == "parse":  # parsing runs nothing
        return run, []
    results = json.loads((target / "run_results.json").read_text())["results"]
    return run, results


def model_times(results: list[dict]) -> dict[str, float]:
    return {r["unique_id"]: float(r["execution_time"]) for r in results}


def _manifest_paths(workdir: Path) -> dict[str, str]:
    manifest = json.loads((workdir / "target" / "manifest.json").read_text())
    return {uid: node.get("original_file_path", "") for uid, node in manifest["nodes"].items()}


def summarize_results(results: list[dict], workdir: Path) -> dict[str, float | str]:
    """Split the build's time by layer: staging, feature models, Python models, tests."""
    paths = _manifest_paths(workdir)
    times = model_times(results)
    out = {"staging_s": 0.0, "features_s": 0.0, "features_sql_s": 0.0, "python_models_s": 0.0, "tests_s": 0.0,
           "ours_equal_s": 0.0}
    for uid, seconds in times.items():
        path = paths.get(uid, "")
        name = uid.split(".")[-1]
        if uid.startswith(("test.", "unit_test.")):
            out["tests_s"] += seconds
            continue
        if path.startswith("models/staging/"):
            out["staging_s"] += seconds
        if path.startswith(FEATURE_MODEL_DIRS) or name in FEATURE_MART_MODELS:
            out["features_s"] += seconds
            if path.endswith(".sql"):
                out["features_sql_s"] += seconds
        if path.endswith(".py"):
            out["python_models_s"] += seconds
        if name in EQUAL_WORK_MODELS:
            out["ours_equal_s"] += seconds
    slowest = sorted(((s, uid.split(".")[-1]) for uid, s in times.items() if uid.startswith("model.")), reverse=True)
    out["slowest_models"] = "; ".join(f"{name} {s:.1f}" for s, name in slowest[:5])
    return out


#: The rescoring chain of a run starts with the features mart (``daily_scoring_s``).
SCORING_CHAIN_START = "ml_customer_features"


def _execute_span(result: dict) -> tuple[dt.datetime, dt.datetime] | None:
    for timing in result.get("timing", []):
        if timing.get("name") == "execute" and timing.get("started_at") and timing.get("completed_at"):
            return dt.datetime.fromisoformat(timing["started_at"]), dt.datetime.fromisoformat(timing["completed_at"])
    return None


def scoring_chain_seconds(results: list[dict], start_model: str = SCORING_CHAIN_START) -> float | None:
    """Elapsed seconds from the start of ``start_model`` to the end of the run's last model."""
    spans = [(r["unique_id"].split(".")[-1], span) for r in results
             if r["unique_id"].startswith("model.") and (span := _execute_span(r)) is not None]
    starts = [start for name, (start, _) in spans if name == start_model]
    if not starts:
        return None
    return max(0.0, (max(end for _, (_, end) in spans) - min(starts)).total_seconds())


def ensure_data(size: int, seed: int, cache: Path) -> Path:
    """Raw files for ``size`` customers, generated once per (size, seed)."""
    base = cache / f"{size}_seed{seed}"
    raw = base / "raw"
    if not (raw / "orders.parquet").exists():
        if base.exists():
            shutil.rmtree(base)
        print(f"[bench] generating {size:,} customers (seed {seed}) into {raw}", flush=True)
        subprocess.run([sys.executable, "-m", "churnwarehouse.generate", "--customers", str(size), "--seed",
                        str(seed), "--out", str(raw)], cwd=REPO, env=dbt_env(base / "unused.duckdb"), check=True)
    return raw


def last_order_date(raw: Path) -> dt.date:
    con = duckdb.connect()
    value = con.execute(
        f"select max(try_cast(ordered_at as timestamp)) from read_parquet('{raw / 'orders.parquet'}')"
        " where try_cast(ordered_at as timestamp) < now()"
    ).fetchall()[0][0]
    return value.date()


#: The floor is the fastest of this many scans: one scan on this machine varies by a third from
#: one run to the next (9.9, 11.1 and 13.0 s at 1M in a row), and a single slow one flattered
#: every ratio to it. Taking the fastest makes the ratios to the floor conservative.
FLOOR_REPEATS = 3


def floor_seconds(raw: Path, memory_limit: str, threads: int = 2, repeats: int = FLOOR_REPEATS) -> float:
    """One scan aggregating orders and events by customer: the cost of just reading the data
    (the fastest of ``repeats`` scans)."""
    con = duckdb.connect()
    con.execute(f"set threads = {threads}; set memory_limit = '{memory_limit}'; set enable_progress_bar = false")
    times = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        con.execute(
            f"select customer_id, count(*), sum(order_total), max(ordered_at)"
            f" from read_parquet('{raw / 'orders.parquet'}') group by 1"
        ).fetchall()
        con.execute(
            f"select customer_id, count(*), count(distinct session_id), max(occurred_at)"
            f" from read_parquet('{raw / 'events.parquet'}') group by 1"
        ).fetchall()
        times.append(time.perf_counter() - start)
    return min(times)


def raw_counts(db_path: Path) -> dict[str, int]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        def count(relation: str) -> int:
            return int(con.execute(f"select count(*) from {relation}").fetchall()[0][0])
        return {
            "customers": count("stg_shop__customers"),
            "orders": count("stg_shop__orders"),
            "order_lines": count("stg_shop__order_items"),
            "events": count("stg_shop__events"),
            "feature_rows": count("ml_customer_features"),
            "scored_customers": count("churn_scores"),
        }
    finally:
        con.close()


def run_pandas(db_path: Path, workdir: Path) -> tuple[float | None, float | None]:
    """The pandas baseline on the build's staged inputs: (load + compute seconds, peak RSS MB)."""
    from churnwarehouse.pandas_features import export_staged

    staged = workdir / "staged"
    if staged.exists():
        shutil.rmtree(staged)
    export_staged(db_path, staged)
    run = measure([sys.executable, "-m", "churnwarehouse.pandas_features", "--staged", str(staged)],
                  dbt_env(db_path))
    shutil.rmtree(staged, ignore_errors=True)
    if run.returncode != 0:
        print(f"[bench] pandas baseline failed:\n{run.stderr[-2000:]}", flush=True)
        return None, run.peak_rss_mb
    report = json.loads(run.stdout.strip().splitlines()[-1])
    return float(report["total_seconds"]), run.peak_rss_mb


@dataclass
class SizeResult:
    customers: int = 0
    orders: int = 0
    order_lines: int = 0
    events: int = 0
    build_wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    features_s: float = 0.0
    floor_s: float = 0.0
    pandas_s: float | None = None
    ours_equal_s: float = 0.0
    features_vs_floor: float = 0.0
    pandas_vs_ours: float | None = None
    features_alone_s: float | None = None
    features_sql_alone_s: float | None = None
    ours_equal_alone_s: float | None = None
    features_alone_vs_floor: float | None = None
    features_sql_alone_vs_floor: float | None = None
    pandas_vs_ours_alone: float | None = None
    pandas_peak_rss_mb: float | None = None
    features_sql_s: float = 0.0
    features_sql_vs_floor: float = 0.0
    staging_s: float = 0.0
    python_models_s: float = 0.0
    tests_s: float = 0.0
    feature_rows: int = 0
    scored_customers: int = 0
    daily_s: float | None = None
    daily_peak_rss_mb: float | None = None
    daily_vs_full: float | None = None
    daily_retrained: bool | None = None
    daily_staging_s: float | None = None
    daily_features_s: float | None = None
    daily_python_models_s: float | None = None
    daily_tests_s: float | None = None
    daily_scoring_s: float | None = None
    slowest_models: str = ""


#: One CSV column per measured field, in this order (the issue's required columns come first).
CSV_COLUMNS = [f.name for f in fields(SizeResult)]


def bench_size(size: int, seed: int, cache: Path, with_pandas: bool, with_daily: bool,
               memory_limit: str) -> SizeResult:
    raw_full = ensure_data(size, seed, cache)
    workdir = cache / f"{size}_seed{seed}" / "work"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    end = last_order_date(raw_full)
    # the full build sees the data up to the day before the last; the daily run adds the last day
    # one raw folder, as a shop has: the daily run finds one more day of data in the same place
    raw_build = workdir / "raw"
    cut_raw_directory(raw_full, raw_build, dt.datetime.combine(end, dt.time()))
    db_path = workdir / "warehouse.duckdb"
    dbt_vars = {"raw_path": str(raw_build), "model_registry_path": str(workdir / "model_registry")}

    print(f"[bench] {size:,} customers: full dbt build", flush=True)
    full, results = dbt_build(workdir / "full", db_path, dbt_vars)
    result = SizeResult(build_wall_s=full.wall_s, peak_rss_mb=full.peak_rss_mb)
    for key, value in summarize_results(results, workdir / "full").items():
        setattr(result, key, value)
    for key, value in raw_counts(db_path).items():
        setattr(result, key, value)

    result.floor_s = floor_seconds(raw_build, memory_limit)
    result.features_vs_floor = result.features_s / result.floor_s if result.floor_s else 0.0
    result.features_sql_vs_floor = result.features_sql_s / result.floor_s if result.floor_s else 0.0

    if with_pandas:
        print(f"[bench] {size:,} customers: pandas baseline", flush=True)
        result.pandas_s, result.pandas_peak_rss_mb = run_pandas(db_path, workdir)
        if result.pandas_s and result.ours_equal_s:
            result.pandas_vs_ours = result.pandas_s / result.ours_equal_s

    print(f"[bench] {size:,} customers: feature models alone", flush=True)
    alone = feature_models_alone(workdir, db_path, dbt_vars)
    result.features_alone_s = alone["features_s"]
    result.features_sql_alone_s = alone["features_sql_s"]
    result.ours_equal_alone_s = alone["ours_equal_s"]
    if result.floor_s:
        result.features_alone_vs_floor = result.features_alone_s / result.floor_s
        result.features_sql_alone_vs_floor = result.features_sql_alone_s / result.floor_s
    if result.pandas_s and result.ours_equal_alone_s:
        result.pandas_vs_ours_alone = result.pandas_s / result.ours_equal_alone_s

    if with_daily:
        print(f"[bench] {size:,} customers: daily incremental run (+1 day)", flush=True)
        daily_vars = {**dbt_vars, **DAILY_VARS}
        # yesterday's daily job left its parsed project in its target folder: dbt parses only
        # what changed (here nothing), as in a scheduled job that keeps its target folder
        dbt_build(workdir / "daily", db_path, daily_vars, command="parse")
        shutil.rmtree(raw_build)
        cut_raw_directory(raw_full, raw_build, dt.datetime.combine(end + dt.timedelta(days=1), dt.time()))
        daily, daily_results = dbt_build(workdir / "daily", db_path, daily_vars, *DAILY_ARGS)
        result.daily_s = daily.wall_s
        layers = summarize_results(daily_results, workdir / "daily")
        result.daily_staging_s, result.daily_features_s = layers["staging_s"], layers["features_s"]
        result.daily_python_models_s, result.daily_tests_s = layers["python_models_s"], layers["tests_s"]
        result.daily_scoring_s = scoring_chain_seconds(daily_results)
        result.daily_peak_rss_mb = daily.peak_rss_mb
        result.daily_vs_full = daily.wall_s / full.wall_s
        con = duckdb.connect(str(db_path), read_only=True)
        try:
            reason = con.execute("select max(selection_reason) from ml_churn_model_registry where is_current"
                                 ).fetchall()[0][0] or ""
        finally:
            con.close()
        result.daily_retrained = reason.startswith("trained")
        print(f"[bench] daily run model: {reason}", flush=True)
    shutil.rmtree(raw_build, ignore_errors=True)
    return result


#: The feature models, as a dbt selection (FEATURE_MODEL_DIRS and FEATURE_MART_MODELS).
FEATURE_SELECTION = [f"path:{d.rstrip('/')}" for d in FEATURE_MODEL_DIRS] + list(FEATURE_MART_MODELS)


def feature_models_alone(workdir: Path, db_path: Path, dbt_vars: dict) -> dict[str, float | str]:
    """The feature models re-run on the built warehouse one at a time (same data, same tables),
    the review-sentiment cache cleared first so it refits as in the build; their times by layer."""
    shutil.rmtree(Path(dbt_vars["model_registry_path"]) / "review_sentiment", ignore_errors=True)
    _, results = dbt_build(workdir / "alone", db_path, dbt_vars, "--threads", "1", "--select", *FEATURE_SELECTION,
                           command="run")
    return summarize_results(results, workdir / "alone")


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def print_table(rows: list[SizeResult]) -> None:
    columns = [("customers", 0), ("orders", 0), ("order_lines", 0), ("events", 0), ("build_wall_s", 1),
               ("peak_rss_mb", 0), ("features_s", 1), ("features_sql_s", 1), ("floor_s", 2), ("features_vs_floor", 1),
               ("features_sql_vs_floor", 1), ("features_alone_s", 1), ("features_alone_vs_floor", 1),
               ("features_sql_alone_vs_floor", 1), ("pandas_s", 1), ("ours_equal_s", 1), ("pandas_vs_ours", 1),
               ("ours_equal_alone_s", 1), ("pandas_vs_ours_alone", 1), ("daily_s", 1), ("daily_scoring_s", 1),
               ("daily_vs_full", 2)]
    cells = [[_fmt(getattr(r, c), d) for c, d in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, (c, _) in enumerate(columns)]
    print(" | ".join(c.ljust(w) for (c, _), w in zip(columns, widths)))
    print("-+-".join("-" * w for w in widths))
    for row in cells:
        print(" | ".join(v.rjust(w) for v, w in zip(row, widths)))


def write_csv(rows: list[SizeResult], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            values = asdict(row)
            writer.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in values.items()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=list(DEFAULT_SIZES))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache", type=Path, default=REPO / "bench" / "cache")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.csv")
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas baseline")
    parser.add_argument("--no-daily", action="store_true", help="skip the incremental daily run")
    args = parser.parse_args(argv)
    memory_limit = os.environ.get("CHURN_DUCKDB_MEMORY_LIMIT", "8GB")
    rows = []
    for size in args.sizes:
        rows.append(bench_size(size, args.seed, args.cache.resolve(), not args.no_pandas, not args.no_daily,
                               memory_limit))
        write_csv(rows, args.out)
    print()
    print_table(rows)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
