"""Shared fixtures: build real warehouses with dbt into temporary directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_UCI = REPO.parent / "shared" / "data" / "uci_online_retail"
UCI_FILES = [
    SHARED_UCI / "online_retail_ii_2009_2010.parquet",
    SHARED_UCI / "online_retail_2010_2011.parquet",
]
BIN = Path(sys.executable).parent


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``python -m churnwarehouse.<module>`` and fail the test with its output on error."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "python")}
    proc = subprocess.run(
        [sys.executable, "-m", f"churnwarehouse.{module}", *args],
        cwd=REPO, env=env, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise AssertionError(f"{module} {args} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def dbt(command: str, workdir: Path, db_path: Path, dbt_vars: dict, *args: str,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run a dbt command from the repo root against a warehouse file of its own."""
    env = {
        **os.environ,
        "CHURN_DUCKDB_PATH": str(db_path),
        "DBT_PROFILES_DIR": str(REPO),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PYTHONPATH": str(REPO / "python"),
    }
    cmd = [
        str(BIN / "dbt"), command,
        "--vars", json.dumps(dbt_vars),
        "--target-path", str(workdir / "target"),
        "--log-path", str(workdir / "logs"),
        *args,
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"dbt {command} failed:\n{proc.stdout[-8000:]}\n{proc.stderr[-2000:]}")
    return proc


class Warehouse:
    """A built warehouse: its raw directory, DuckDB file and dbt output."""

    def __init__(self, raw_dir: Path, db_path: Path, build_output: str):
        self.raw_dir = raw_dir
        self.db_path = db_path
        self.build_output = build_output

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with duckdb.connect(str(self.db_path), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def scalar(self, sql: str, params: list | None = None):
        return self.query(sql, params)[0][0]


def build(raw_dir: Path, workdir: Path, **extra_vars) -> Warehouse:
    db_path = workdir / "warehouse.duckdb"
    # test builds fit on at most 20,000 labelled rows (the same code path, sampled by customer hash)
    dbt_vars = {"raw_path": str(raw_dir), "model_registry_path": str(workdir / "model_registry"),
                "max_training_rows": 20000, **extra_vars}
    proc = dbt("build", workdir, db_path, dbt_vars)
    return Warehouse(raw_dir, db_path, proc.stdout)


@pytest.fixture(scope="session")
def sample_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """A small generated sample: (raw_dir, truth_dir)."""
    root = tmp_path_factory.mktemp("sample")
    run_module("generate", "--customers", "3000", "--seed", "7",
               "--out", str(root / "raw"), "--truth-out", str(root / "truth"))
    return root / "raw", root / "truth"


@pytest.fixture(scope="session")
def sample_warehouse(sample_dirs, tmp_path_factory) -> Warehouse:
    raw_dir, _ = sample_dirs
    return build(raw_dir, tmp_path_factory.mktemp("sample_build"))


@pytest.fixture(scope="session")
def uci_raw_dir(tmp_path_factory) -> Path:
    if not all(f.exists() for f in UCI_FILES):
        pytest.skip("the UCI Online Retail files in ../shared/data are not here")
    out = tmp_path_factory.mktemp("uci") / "raw"
    run_module("load", "uci", *map(str, UCI_FILES), "--out", str(out))
    return out


@pytest.fixture(scope="session")
def uci_warehouse(uci_raw_dir, tmp_path_factory) -> Warehouse:
    return build(uci_raw_dir, tmp_path_factory.mktemp("uci_build"))
