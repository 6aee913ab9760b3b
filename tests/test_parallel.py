"""ltbounds.parallel: serial, process pool and Dask give the same results; checkpoints resume."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys

import pytest

from ltbounds.errors import InvalidInput, ModelFormatError
from ltbounds.parallel import (
    Checkpoint,
    WorkItem,
    check_scheduler,
    check_workers,
    run_items,
)
from ltbounds.subsetsum.concentration import BLOCK, concentration_grid

# A small grid: 4 sizes x 2 blocks = 8 work items, two tolerances.
GRID = dict(ns=[8, 9, 10, 11], eps_values=[0.05, 0.01], trials=BLOCK + 300)


def grid(**options):
    return concentration_grid(GRID["ns"], GRID["eps_values"], GRID["trials"], seed=7, **options)


@pytest.fixture(scope="module")
def serial():
    return grid(workers=1)


@pytest.fixture(scope="module")
def dask_cluster():
    """One LocalCluster for the module: 2 worker processes, 1 thread each (slow to start)."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    yield cluster
    cluster.close()


def test_pool_equals_serial(serial) -> None:
    assert [r.failures for r in serial] != [0] * len(serial)  # the grid sees failures
    assert grid(workers=2) == serial


def test_dask_local_cluster_equals_serial(serial, dask_cluster) -> None:
    assert grid(scheduler=dask_cluster.scheduler_address) == serial
    distributed = pytest.importorskip("distributed")
    with distributed.Client(dask_cluster) as client:  # a connected client works as well
        assert grid(scheduler=client) == serial


def test_results_come_back_in_item_order_from_a_pool() -> None:
    items = [WorkItem(f"k{value}", value, cost=value) for value in (3, 9, 1, 12, 5)]
    assert run_items(math.factorial, items, workers=2) == [6, 362880, 1, 479001600, 120]
    assert run_items(math.factorial, items, workers=1) == [6, 362880, 1, 479001600, 120]
    assert run_items(math.factorial, [], workers=2) == []


def test_an_error_in_a_worker_reaches_the_caller() -> None:
    items = [WorkItem("good", 3), WorkItem("bad", -1)]
    with pytest.raises(ValueError, match="negative"):
        run_items(math.factorial, items, workers=2)


def test_checkpoint_resume_skips_finished_items_and_drops_a_torn_line(serial, tmp_path) -> None:
    path = tmp_path / "sweep.jsonl"
    assert grid(workers=1, checkpoint=path) == serial
    lines = path.read_text().splitlines()
    header, records = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    assert header["format"] == "ltbounds-checkpoint" and header["job"]["seed"] == 7
    assert sorted(r["key"] for r in records) == sorted(
        f"n={n}/block={b}" for n in GRID["ns"] for b in (0, 1)
    )
    # Rerunning a finished checkpoint computes nothing and gives the same results.
    assert grid(workers=1, checkpoint=path) == serial
    assert path.read_text().splitlines() == lines
    # A run killed after three items, in the middle of writing the fourth: resume it.
    path.write_text("\n".join(lines[:4]) + "\n" + lines[4][:10])
    assert grid(workers=1, checkpoint=path) == serial
    resumed = path.read_text().splitlines()
    assert resumed[:4] == lines[:4] and len(resumed) == len(lines)
    assert all(json.loads(line) for line in resumed)  # the torn line is gone
    # Finished items really are skipped: a (tampered) recorded count is taken as it is.
    record = json.loads(lines[1])
    record["result"] = [count + 1 for count in record["result"]]
    path.write_text("\n".join([lines[0], json.dumps(record)]) + "\n")
    tampered = grid(workers=1, checkpoint=path)
    n = int(record["key"].split("/")[0].removeprefix("n="))
    assert [r.failures for r in tampered if r.n == n] == [
        r.failures + 1 for r in serial if r.n == n
    ]


def test_progress_counts_every_trial_once_also_when_resuming(tmp_path) -> None:
    done: list[int] = []
    path = tmp_path / "sweep.jsonl"
    grid(workers=1, checkpoint=path, progress=done.append)
    assert sum(done) == len(GRID["ns"]) * GRID["trials"]
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3]) + "\n")
    done.clear()
    grid(workers=1, checkpoint=path, progress=done.append)
    assert sum(done) == len(GRID["ns"]) * GRID["trials"]


def test_checkpoint_of_another_job_or_a_damaged_file_is_refused(tmp_path) -> None:
    path = tmp_path / "sweep.jsonl"
    grid(workers=1, checkpoint=path)
    with pytest.raises(InvalidInput, match=r"belongs to another job \(differs in seed\)"):
        concentration_grid(GRID["ns"], GRID["eps_values"], GRID["trials"], seed=8, checkpoint=path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not json", lines[2]]) + "\n")
    with pytest.raises(ModelFormatError, match="line 2 is not an item record"):
        grid(workers=1, checkpoint=path)
    path.write_text("\n".join([lines[0], json.dumps({"key": "n=99/block=0", "result": [1, 2]})]) + "\n")
    with pytest.raises(ModelFormatError, match="holds item 'n=99/block=0'"):
        grid(workers=1, checkpoint=path)
    header = json.loads(lines[0])
    path.write_text(json.dumps({**header, "version": 99}) + "\n")
    with pytest.raises(ModelFormatError, match="version=99"):
        grid(workers=1, checkpoint=path)
    path.write_text("hello\n")
    with pytest.raises(ModelFormatError, match="does not start with an ltbounds checkpoint"):
        grid(workers=1, checkpoint=path)
    with pytest.raises(InvalidInput, match="is a folder"):
        grid(workers=1, checkpoint=tmp_path)


def test_checkpointed_results_are_json_values(tmp_path) -> None:
    items = [WorkItem("a", (1, 2)), WorkItem("b", (3,))]
    fresh = run_items(tuple, items, workers=1, checkpoint=tmp_path / "a.jsonl")
    assert fresh == [[1, 2], [3]]  # as a resumed run would read them back
    assert run_items(tuple, items, workers=1, checkpoint=tmp_path / "a.jsonl") == fresh
    with pytest.raises(InvalidInput, match="must be JSON values"):
        run_items(set, items, workers=1, checkpoint=tmp_path / "b.jsonl")


def test_empty_or_torn_header_starts_afresh(tmp_path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"format": "ltbounds-che')
    checkpoint = Checkpoint(path, {"job": "x"})
    assert checkpoint.load(["a"]) == {}
    checkpoint.append("a", 1)
    checkpoint.close()
    assert Checkpoint(path, {"job": "x"}).load(["a"]) == {"a": 1}


def test_arguments_are_checked() -> None:
    with pytest.raises(InvalidInput, match="appears more than once"):
        run_items(abs, [WorkItem("a", 1), WorkItem("a", 2)], workers=1)
    with pytest.raises(InvalidInput, match="workers=-1"):
        run_items(abs, [WorkItem("a", 1)], workers=-1)
    for bad in ("localhost:8786", "tcp://", 8786):
        with pytest.raises(InvalidInput, match="like tcp://HOST:PORT"):
            check_scheduler(bad)
    assert check_scheduler("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    assert check_scheduler(None) is None and check_workers(None) >= 1 and check_workers(3) == 3


def test_missing_dask_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    with pytest.raises(InvalidInput, match=r"needs dask.distributed.*ltbounds\[dask\]"):
        run_items(abs, [WorkItem("a", 1)], scheduler="tcp://127.0.0.1:8786")


def test_importing_parallel_loads_neither_dask_nor_numpy() -> None:
    code = (
        "import sys, ltbounds.parallel; "
        "print(sorted(m for m in ('dask', 'distributed', 'numpy', 'cupy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
