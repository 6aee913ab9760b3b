"""Hostile command lines: every verb refuses bad input in one line, before any work (issue 12).

Each case runs :func:`ltbounds.cli.main` in-process with one hostile argument (a negative,
NaN, infinite or absurd number; δ outside (0, 1); a missing path, a directory where a file
goes, a hostile file; an unknown name) among otherwise valid, cheap ones. The contract:

* ``main`` returns a non-zero exit code; no exception escapes it (``main`` lets only
  non-``LtboundsError`` exceptions through, so an escape is a crash);
* stderr holds the refusal, without a traceback;
* nothing is left in the output folder (no ticket, report, table or temporary file).

A smaller set runs as real subprocesses (``python -m ltbounds``) and checks the same from the
outside: non-zero exit, no "Traceback" on stderr, no file written.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltbounds.backend import get_backend
from ltbounds.cli import main
from ltbounds.errors import LtboundsError

FUZZ = settings(
    max_examples=70, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # fmt: skip

BAD_REAL = ["-1", "0", "nan", "inf", "-inf", "-0", "abc", "", "1e400", "0x10"]
BAD_POSITIVE = BAD_REAL  # eps-like: > 0 and finite
BAD_PROBABILITY = ["0", "1", "1.5", "-0.1", "nan", "inf", "-inf", "x", "1e400"]
BAD_COUNT = ["-1", "1.5", "nan", "x", "", "99999999999999999999999"]
BAD_SEED = ["-1", "18446744073709551616", "1.5", "x"]


def _unusable_backends() -> list[str]:
    """Backend names that must be refused here: unknown ones, and cupy where it cannot run."""
    names = ["jax", "", "NUMPY", "numpy; rm -rf /", "torch"]
    try:
        get_backend("cupy")
    except LtboundsError:
        names.append("cupy")
    return names


BAD_BACKEND = _unusable_backends()


@pytest.fixture(scope="module")
def world() -> dict[str, str]:
    """Paths the cases use: a valid ticket, hostile files, and an output folder checked after."""
    from ltbounds.construct import construct  # noqa: PLC0415
    from ltbounds.nets import load_embedded  # noqa: PLC0415

    root = Path(tempfile.mkdtemp(prefix="ltbounds-fuzz-cli-"))
    inputs = root / "inputs"
    inputs.mkdir()
    ticket = inputs / "ticket.npz"
    construct(load_embedded("digits_mlp_relu"), eps=0.01, rho=2, seed=0).save(ticket)
    (inputs / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (inputs / "text.txt").write_text("hello\n")
    (inputs / "empty.npz").write_bytes(b"")
    (inputs / "folder.npz").mkdir()
    (inputs / "folder.toml").mkdir()
    (inputs / "bad.toml").write_text("[proof]\ntitle = 1\n")
    (inputs / "v2.toml").write_text('[proof]\nversion = 2\ntitle = "t"\nsource = "s"\nclaim = "c"\n')
    (inputs / "bad.json").write_text('{"format": "ltbounds-certify-report", "version": 99}')
    (inputs / "array.json").write_text("[1, 2, 3]")
    yield {
        "ticket": str(ticket),
        "inputs": str(inputs),
        "root": str(root),
    }
    import shutil  # noqa: PLC0415

    shutil.rmtree(root, ignore_errors=True)


def hostile_paths(world: dict[str, str], suffix: str) -> list[str]:
    inputs = world["inputs"]
    return [
        f"{inputs}/does-not-exist{suffix}", inputs, f"{inputs}/folder.npz", f"{inputs}/garbage.npz",
        f"{inputs}/text.txt", f"{inputs}/empty.npz", f"{inputs}/text.txt/below{suffix}", "",
    ]  # fmt: skip


def output_paths(out: Path) -> list[str]:
    """Places an output cannot go: an existing folder, below a file."""
    (out / "adir").mkdir(exist_ok=True)
    (out.parent / "a-file").write_text("x")
    return [str(out / "adir"), str(out.parent / "a-file" / "t.npz"), str(out)]


def run_in_process(argv: list[str]) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    return code, stdout.getvalue(), stderr.getvalue()


def check_refused(argv: list[str], out: Path) -> None:
    before = sorted(p.name for p in out.iterdir())
    code, _, stderr = run_in_process(argv)
    assert code != 0, f"accepted: {argv}"
    assert "Traceback" not in stderr
    assert "error" in stderr.lower() or "usage" in stderr.lower(), f"no refusal on stderr for {argv}: {stderr!r}"
    assert sorted(p.name for p in out.iterdir()) == before, f"files left behind by {argv}"


@st.composite
def construct_argv(draw: st.DrawFn, world: dict[str, str], out: Path) -> list[str]:
    options = {
        "--eps": "0.5", "--delta": "0.5", "--rho": "2", "--seed": "0", "--samples": "0",
    }  # fmt: skip
    target, output = "digits_mlp_relu", str(out / "ticket.npz")
    which = draw(st.sampled_from(
        ["--eps", "--delta", "--rho", "--seed", "--samples", "--param-eps", "--depth", "--objective",
         "--activation", "TARGET", "-o", "--sidecar", "--backend"]
    ))  # fmt: skip
    bad = {
        "--eps": BAD_POSITIVE + ["5e-324", "1e-320"],
        "--delta": BAD_PROBABILITY,
        "--rho": BAD_COUNT + ["0", "257", "1000000000"],
        "--seed": BAD_SEED,
        "--samples": BAD_COUNT + ["10000000000000"],
        "--param-eps": BAD_POSITIVE,
        "--depth": ["3L", "", "l+1", "L+2"],
        "--objective": ["fast", ""],
        "--activation": ["swish", "", "relu; rm -rf /"],
        "--backend": BAD_BACKEND,
        "--sidecar": [f"{world['inputs']}/array.json", f"{world['inputs']}/does-not-exist.json", world["inputs"]],
    }
    if which == "TARGET":
        target = draw(st.sampled_from(hostile_paths(world, ".npz") + ["digits", "digits_cnn_relu_x"]))
    elif which == "-o":
        output = draw(st.sampled_from(output_paths(out)))
    elif which == "--sidecar":
        target = f"{world['inputs']}/garbage.npz"
        options["--sidecar"] = draw(st.sampled_from(bad["--sidecar"]))
    else:
        options[which] = draw(st.sampled_from(bad[which]))
    return ["construct", target, "-o", output, *[x for kv in options.items() for x in kv]]


@st.composite
def certify_argv(draw: st.DrawFn, world: dict[str, str], out: Path) -> list[str]:
    options = {"--samples": "16", "--restarts": "1", "--steps": "1", "--budget": "1", "--seed": "0"}
    target, ticket = "digits_mlp_relu", world["ticket"]
    which = draw(st.sampled_from(
        ["--samples", "--restarts", "--steps", "--budget", "--seed", "--eps", "--method", "TARGET",
         "TICKET", "-o", "--report", "--check-report", "--backend"]
    ))  # fmt: skip
    bad = {
        "--samples": BAD_COUNT + ["0", "10000000000000"],
        "--restarts": BAD_COUNT + ["0"],
        "--steps": BAD_COUNT,
        "--budget": BAD_COUNT + ["0", "10000000000000"],
        "--seed": BAD_SEED,
        "--eps": BAD_POSITIVE,
        "--method": ["magic", "", "IBP"],
        "--backend": BAD_BACKEND,
    }
    extra: list[str] = []
    if which == "TARGET":
        target = draw(st.sampled_from(hostile_paths(world, ".npz") + ["digits_cnn_relu", "nope"]))
    elif which == "TICKET":
        ticket = draw(st.sampled_from(hostile_paths(world, ".npz")))
    elif which == "-o":
        extra = ["-o", draw(st.sampled_from(output_paths(out)))]
    elif which == "--report":
        output_paths(out)
        extra = ["--report", str(out.parent / "a-file")]
    elif which == "--check-report":
        report = draw(st.sampled_from(hostile_paths(world, ".json") + [
            f"{world['inputs']}/bad.json", f"{world['inputs']}/array.json"]))  # fmt: skip
        return ["certify", "--check-report", report]
    else:
        options[which] = draw(st.sampled_from(bad[which]))
    return ["certify", target, ticket, *[x for kv in options.items() for x in kv], *extra]


@st.composite
def table_argv(draw: st.DrawFn, world: dict[str, str], out: Path) -> list[str]:
    options = {"--eps": "0.01", "--delta": "0.01"}
    subject = ["--preset", "lenet5"]
    which = draw(st.sampled_from(["--eps", "--delta", "--preset", "--constant", "--format", "--sweep", "-o", "TARGET", "--seed"]))
    extra: list[str] = []
    if which == "--eps":
        options["--eps"] = draw(st.sampled_from(BAD_POSITIVE))
    elif which == "--delta":
        options["--delta"] = draw(st.sampled_from(BAD_PROBABILITY))
    elif which == "--preset":
        subject = ["--preset", draw(st.sampled_from(["nope", "", "../lenet5"]))]
    elif which == "--constant":
        extra = ["--constant", draw(st.sampled_from(["nan", "-1", "0", "inf", "magic"]))]
    elif which == "--format":
        extra = ["--format", draw(st.sampled_from(["xml", "", "JSON"]))]
    elif which == "--sweep":
        extra = ["--sweep", draw(st.sampled_from(
            ["eps=1:0", "eps=nan:1e-3", "eps=1e-1:1e-3:100000000", "delta=0.5:2", "garbage", "eps=1e-1:1e-3:0", "rho=1:2"]
        )), "-o", str(out / "sweep.csv")]  # fmt: skip
    elif which == "-o":
        extra = ["-o", draw(st.sampled_from(output_paths(out)))]
    elif which == "TARGET":
        subject = [draw(st.sampled_from(hostile_paths(world, ".npz")))]
    else:
        subject = ["digits_mlp_relu"]
        extra = ["--seed", draw(st.sampled_from(BAD_SEED))]
    return ["table", *subject, *[x for kv in options.items() for x in kv], *extra]


@st.composite
def other_argv(draw: st.DrawFn, world: dict[str, str], out: Path) -> list[str]:
    verb = draw(st.sampled_from(["prove", "coverage", "demo"]))
    inputs = world["inputs"]
    if verb == "prove":
        return ["prove", draw(st.sampled_from(
            [f"{inputs}/does-not-exist", f"{inputs}/bad.toml", f"{inputs}/v2.toml", f"{inputs}/text.txt",
             f"{inputs}/folder.npz", f"{inputs}/garbage.npz"]))]  # fmt: skip
    if verb == "coverage":
        options = {"--n": "8", "--eps": "0.01", "--trials": "10"}
        # (--seed: coverage seeds numpy's SeedSequence, which takes any integer >= 0.)
        which = draw(st.sampled_from(
            ["--n", "--eps", "--trials", "--confidence", "--distribution", "--csv", "--plot", "--checkpoint",
             "--workers", "--same-file"]
        ))  # fmt: skip
        bad = {
            # (8:99999999999 is refused from its bounds, before the range is built.)
            "--n": ["0", "41", "5:3", "x", "", "-8", "8:99999999999", "99999999999:99999999999", "8:9:10", "-3:8"],
            "--eps": BAD_POSITIVE + ["1", "0.1,nan", "0.1,"],
            # (10^9 is the cap; tests/test_cli_coverage.py checks the memory refusal of a grid
            # of 40 sizes x 10^9 trials under a fixed budget.)
            "--trials": BAD_COUNT + ["0", "1000000001"],
            "--confidence": BAD_PROBABILITY,
            "--distribution": ["normal", ""],
            "--csv": output_paths(out),
            "--plot": output_paths(out) + [str(out / "plot.xyz")],
            "--checkpoint": output_paths(out),
            "--workers": ["0", "-1", "99999999999", "x"],
        }
        if which == "--same-file":  # two outputs naming one file
            first, second = draw(st.permutations(["--csv", "--plot", "--checkpoint"]))[:2]
            options[first] = options[second] = str(out / "same.png")
        else:
            options[which] = draw(st.sampled_from(bad[which]))
        return ["coverage", *[x for kv in options.items() for x in kv]]
    options = {"--eps": "0.5", "--samples": "16", "--budget": "1", "--no-certify": None}
    which = draw(st.sampled_from(["--eps", "--delta", "--depth", "--samples", "--budget", "--seed"]))
    bad = {
        "--eps": BAD_POSITIVE, "--delta": BAD_PROBABILITY, "--depth": ["3L", ""],
        "--samples": BAD_COUNT + ["10000000000000"], "--budget": BAD_COUNT + ["0"], "--seed": BAD_SEED,
    }  # fmt: skip
    if which == "--budget":
        options.pop("--no-certify")
    options[which] = draw(st.sampled_from(bad[which]))
    return ["demo", *[x for kv in options.items() for x in kv if x is not None]]


VERBS = {"construct": construct_argv, "certify": certify_argv, "table": table_argv, "other": other_argv}


@pytest.mark.parametrize("verb", sorted(VERBS))
@FUZZ
@given(data=st.data())
def test_hostile_arguments_are_refused_in_one_line_before_work(
    verb: str, world: dict[str, str], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory(dir=world["root"]) as folder:
        out = Path(folder) / "out"
        out.mkdir()
        argv = data.draw(VERBS[verb](world, out))
        check_refused(argv, out)


# -- the same from outside: real processes ------------------------------------------------------
def test_real_processes_never_print_a_traceback(world: dict[str, str]) -> None:
    inputs = world["inputs"]
    with tempfile.TemporaryDirectory(dir=world["root"]) as folder:
        out = Path(folder)
        # One case per kind of refusal (the in-process fuzz above covers the rest; each process
        # costs about a second of imports, so the list is kept short).
        cases = [
            ["construct", "digits_mlp_relu", "-o", str(out), "--rho", "2", "--samples", "0"],
            ["construct", "digits_mlp_relu", "-o", str(out / "t.npz"), "--rho", "1000000000"],
            ["construct", f"{inputs}/garbage.npz", "-o", str(out / "t.npz")],
            ["certify", "digits_mlp_relu", f"{inputs}/folder.npz"],
            ["certify", "--check-report", f"{inputs}/bad.json"],
            ["table", "--preset", "lenet5", "--delta", "1"],
            ["prove", f"{inputs}/v2.toml"],
            ["coverage", "--trials", "99999999999999999999999"],
            ["coverage", "--n", "8:99999999999"],
            ["demo", "--eps", "-0.1"],
            ["construct", "digits_mlp_relu", "-o", str(out / "t.npz"), "--no-such-option"],
        ]
        environment = {**os.environ, "COLUMNS": "200"}
        processes = [
            subprocess.Popen([sys.executable, "-m", "ltbounds", *argv], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=environment)
            for argv in cases
        ]  # fmt: skip
        for argv, process in zip(cases, processes, strict=True):
            _, stderr = process.communicate(timeout=300)
            assert process.returncode != 0, argv
            assert "Traceback" not in stderr, (argv, stderr)
            assert len(stderr.strip().splitlines()) == 1, (argv, stderr)
        assert list(out.iterdir()) == []
