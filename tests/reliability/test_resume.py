"""A coverage sweep killed mid-way (SIGINT, SIGKILL) and resumed gives the uninterrupted output.

The interrupted run is a real ``ltbounds coverage`` subprocess with ``--checkpoint``; the kill
lands once the checkpoint holds a few finished blocks, and the killed run must leave no output
file behind. The run resumed from that checkpoint (in this process, to save a second
interpreter start) must print the same JSON and write the same CSV, byte for byte.
"""

from __future__ import annotations

import contextlib
import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ltbounds.cli import main

# 5 sizes x 2 blocks = 10 work items, a few seconds in all.
SWEEP = ["coverage", "--n", "12:16", "--eps", "0.02,0.01", "--trials", "2048", "--seed", "3"]


def command(folder: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "ltbounds", *SWEEP, "--csv", str(folder / "delta.csv"), "--json",
        *extra,
    ]


def records(checkpoint: Path) -> int:
    return checkpoint.read_bytes().count(b"\n") - 1 if checkpoint.exists() else 0


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[str, bytes]:
    """The same sweep run once without interruption (in this process: same code, same bytes)."""
    folder = tmp_path_factory.mktemp("reference")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(command(folder, "--workers", "1")[3:]) == 0
    return stdout.getvalue(), (folder / "delta.csv").read_bytes()


@pytest.mark.parametrize(
    ("kill", "workers"),
    [(signal.SIGINT, "1"), (signal.SIGKILL, "2")],
    ids=["SIGINT-serial", "SIGKILL-pool"],
)
def test_killed_sweep_resumes_to_the_uninterrupted_output(
    uninterrupted, tmp_path, kill, workers
) -> None:
    checkpoint = tmp_path / "sweep.jsonl"
    run = command(tmp_path, "--workers", workers, "--checkpoint", str(checkpoint))
    # A shell's background job inherits SIGINT ignored (and Python then installs no handler),
    # so the child gets the default disposition back, as a user's terminal would give it.
    process = subprocess.Popen(
        run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while records(checkpoint) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(kill)
    out, _ = process.communicate(timeout=60)
    assert process.returncode != 0, "the sweep finished before it could be interrupted"
    assert out == ""
    assert 2 <= records(checkpoint) < 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.jsonl"]  # no partial output

    # Resume in this process, serially: the checkpoint does not depend on where items ran
    # (and the killed run above was a real process).
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(command(tmp_path, "--workers", "1", "--resume", str(checkpoint))[3:]) == 0
    assert stdout.getvalue() == uninterrupted[0]
    assert (tmp_path / "delta.csv").read_bytes() == uninterrupted[1]
    assert records(checkpoint) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["delta.csv", "sweep.jsonl"]
