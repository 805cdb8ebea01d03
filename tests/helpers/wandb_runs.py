"""W&B's offline runs read back for the tests, strictly, and as W&B's own tools read them.

A ``.wandb`` file is W&B's transaction log: a 7-byte header, then 32 KiB blocks of chunks (LevelDB's
log format); a chunk is a CRC-32 (of its type and data), a length, a type (a whole record, or the
first, a middle or the last piece of one) and the data; a block ends in zeros where no chunk
header fits. A record is a ``Record`` protobuf whose definition ships inside the wandb package.

The reader here checks every length and CRC and fails on a file W&B has not finished writing,
naming the file and the byte. It is written apart from tuner.wandb_files on purpose: the logger
decides from its own reading when W&B is done, and a test must not take that reading on trust;
test_wandb_logger checks this one against ``wandb leet inspect``, W&B's own reader.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from tuner.trials import TRIAL_ID_DTYPE
from wandb.proto import wandb_internal_pb2

WANDB = Path(sys.executable).parent / "wandb"
BLOCK = 32768


class IncompleteRunFile(AssertionError):
    """A .wandb file that is cut short, damaged, or not yet written to its end."""


def read_records(path: Path, unfinished: bool = False) -> list[wandb_internal_pb2.Record]:
    """Every record of a .wandb file, in order; IncompleteRunFile unless the file is whole and
    ends with the run's exit record. ``unfinished`` accepts whole records without an exit record
    (what W&B has written of a run whose driver was killed, after a periodic flush)."""
    data = path.read_bytes()

    def incomplete(position: int, why: str) -> IncompleteRunFile:
        return IncompleteRunFile(f"{path}: {why} at byte {position} of {len(data)}")

    if data[:7] != b":W&B" + struct.pack("<HB", 0xBEE1, 0):
        raise incomplete(0, "no W&B header")
    records, position, pending = [], 7, None
    while position < len(data):
        left = BLOCK - position % BLOCK
        if left < 7:
            if data[position : position + left].strip(b"\0"):
                raise incomplete(position, "a block's trailer is not zeros")
            position += left
            continue
        if position + 7 > len(data):
            raise incomplete(position, "cut short in a chunk header")
        crc, length, kind = struct.unpack_from("<IHB", data, position)
        start, end = position + 7, position + 7 + length
        if kind not in (1, 2, 3, 4) or length > left - 7:
            raise incomplete(position, f"no valid chunk (type {kind}, length {length})")
        if end > len(data):
            raise incomplete(position, f"cut short in a chunk of {length} bytes")
        if zlib.crc32(bytes([kind]) + data[start:end]) != crc:
            raise incomplete(position, "a chunk's CRC does not match")
        if (kind in (1, 2)) != (pending is None):
            raise incomplete(position, "a record's pieces out of order")
        pending = data[start:end] if kind in (1, 2) else pending + data[start:end]
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = None
        position = end
    if pending is not None:
        raise incomplete(position, "cut short inside a record")
    if not records:
        raise incomplete(position, "no record after the header")
    if not unfinished and records[-1].WhichOneof("record_type") != "exit":
        raise incomplete(position, "no exit record at the end: the run is not finished")
    return records


@dataclass
class Run:
    """One W&B run as its offline files hold it; a resumed run is several files, oldest first."""

    files: list[Path]
    record: wandb_internal_pb2.RunRecord
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)  # the updates of every file, later ones win
    exit_codes: list[int] = field(default_factory=list)  # one per file
    artifacts: list = field(default_factory=list)

    @property
    def steps(self) -> list[int]:
        return [row["_step"] for row in self.history]


def offline_runs(folder: Path, unfinished: bool = False) -> dict[str, Run]:
    """The offline runs under ``folder/wandb`` by run id, each file strictly read (read_records)."""
    runs: dict[str, Run] = {}
    for path in sorted(folder.glob("wandb/offline-run-*/run-*.wandb")):  # oldest first
        records = read_records(path, unfinished)
        [record] = [r.run for r in records if r.WhichOneof("record_type") == "run"]
        run = runs.setdefault(record.run_id, Run(files=[], record=record))
        run.files.append(path)
        add_records(run, records)
    return runs


def add_records(run: Run, records: list[wandb_internal_pb2.Record]) -> None:
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.config |= {u.key: json.loads(u.value_json) for u in record.run.config.update if u.key != "_wandb"}
        elif kind == "history":
            run.history.append(items(record.history.item))
        elif kind == "summary":
            run.summary |= items(record.summary.update)
        elif kind == "exit":
            run.exit_codes.append(record.exit.exit_code)
        elif kind == "artifact":
            run.artifacts.append(record.artifact)


def items(entries) -> dict:
    """History or summary items as {key: value}; a nested key as W&B shows it, dotted."""
    return {".".join(e.nested_key) or e.key: json.loads(e.value_json) for e in entries}


def by_job(runs: dict[str, Run], job_type: str) -> list[Run]:
    return [run for run in runs.values() if run.record.job_type == job_type]


def trial_runs(folder: Path) -> dict[str, Run]:
    """The trial runs under ``folder/wandb`` by trial id (each has exactly one)."""
    runs = by_job(offline_runs(folder), "trial")
    by_trial = {run.summary["trial_id"]: run for run in runs}
    assert len(by_trial) == len(runs), "one W&B run per trial"
    return by_trial


def table(run: Run, name: str) -> list[dict]:
    """The rows of the last W&B Table ``name`` the run logged (its file in the run's folder)."""
    relative = run.summary[f"{name}.path"]  # W&B's summary names the table's file
    [saved_at] = [f.parent / "files" / relative for f in run.files if (f.parent / "files" / relative).is_file()]
    saved = json.loads(saved_at.read_text())
    return [dict(zip(saved["columns"], row)) for row in saved["data"]]


def leet_records(path: Path) -> list[dict]:
    """The records of a .wandb file as W&B's own reader prints them (`wandb leet inspect --json`)."""
    done = subprocess.run([str(WANDB), "leet", "inspect", str(path), "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def sync_would_upload(folder: Path) -> set[Path]:
    """The .wandb files `wandb sync --dry-run -v` would upload from ``folder/wandb``."""
    done = subprocess.run(
        [str(WANDB), "sync", "--dry-run", "-v", "wandb"], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = [line.removeprefix("wandb: ") for line in (done.stdout + done.stderr).splitlines()]
    [start] = [i for i, line in enumerate(lines) if line.startswith("Would sync ")]
    listed = [line.strip() for line in lines[start + 1 :] if line.startswith("  ")]
    assert lines[start] == f"Would sync {len(listed)} run(s):", lines
    return {(folder / name).resolve() for name in listed}


def check_runs_match_the_folder(folder: Path, unfinished: bool = False, lossy: bool = False) -> dict[str, Run]:
    """The W&B runs under a results folder hold what the folder holds: one run per trial of
    trials.csv with its epochs once each and their values (as history.csv), its status and
    epochs; one summary run whose last leaderboard lists every trial with its status. Returns
    the trial runs by trial id. ``unfinished`` as for read_records. ``lossy``: a driver was
    killed, and its last upload to a bucket may have missed epochs before a trial's checkpoint;
    they are missing from history.csv and W&B alike, so only every epoch from 1 is not checked."""
    trials = pd.read_csv(folder / "trials.csv", dtype=TRIAL_ID_DTYPE)
    history = pd.read_csv(folder / "history.csv", dtype=TRIAL_ID_DTYPE)
    metric = json.loads((folder / "summary.json").read_text())["metric"]
    runs = offline_runs(folder, unfinished)
    by_trial = {run.summary["trial_id"]: run for run in by_job(runs, "trial")}
    assert sorted(by_trial) == sorted(trials.trial_id) and len(by_job(runs, "trial")) == len(trials)
    for row in trials.itertuples():
        run, expected = by_trial[row.trial_id], history[history.trial_id == row.trial_id]
        read_records(run.files[-1])  # the latest driver finished the run, whatever came before
        assert run.steps == expected.epoch.tolist(), row.trial_id
        assert lossy or run.steps == list(range(1, row.epochs + 1)), row.trial_id
        assert [step[metric] for step in run.history] == pytest.approx(expected[metric].tolist())
        assert (run.summary["status"], run.summary["epochs"]) == (row.status, row.epochs), row.trial_id
        assert run.exit_codes[-1] == (0 if row.status in ("completed", "early_stopped") else 1)
    [summary] = by_job(runs, "summary")
    rows = table(summary, "leaderboard")
    assert {r["trial_id"]: r["status"] for r in rows} == dict(zip(trials.trial_id, trials.status))
    return by_trial
