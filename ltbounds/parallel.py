"""Independent work items, run serially, on a local process pool or on a Dask cluster.

Long jobs (concentration grids, sweeps, seeds) split into *work items*: a module-level
function applied to one argument each, with no shared state. Each item carries everything it
needs, its seed included, so where and in which order it runs cannot change its result;
:func:`run_items` returns the results in the order of the items, so a run on a pool or a
cluster is identical to the serial one.

Three places to run (DESIGN.md, "parallel.py"):

* ``workers=1``: in this process, one item after the other (the reference);
* ``workers=N`` (default: the cores of this machine): a local pool of ``N`` processes,
  started with ``spawn`` (numba's OpenMP threads are not fork-safe). Each worker gets
  ``cores // N`` numba threads, so the pool does not oversubscribe the machine; a worker
  ignores Ctrl-C (the parent handles it and stops the pool) and exits when its parent dies;
* ``scheduler="tcp://HOST:PORT"``: a Dask distributed cluster (``dask scheduler`` plus
  ``dask worker``; see docs/parallel.md). Dask is imported only then.

Checkpoints (``checkpoint=PATH``) make a run resumable: every finished item is appended to a
JSON-lines file (written, flushed and fsync'ed before the next one is recorded); a rerun with
the same file skips the items it holds. The first line records the job, and a checkpoint of a
different job is refused. A torn last line (a run killed while writing) is dropped. Results
must then be JSON values; they are passed through JSON in every case, so a resumed run returns
exactly what an uninterrupted one does.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ltbounds.errors import InvalidInput, ModelFormatError, ResourceLimitError

CHECKPOINT_FORMAT = "ltbounds-checkpoint"
CHECKPOINT_VERSION = 1
SCHEDULER_ENV = "LTBOUNDS_SCHEDULER"
"""Environment variable the CLI reads for ``--scheduler`` when the option is not given."""

_THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS")


@dataclass(frozen=True)
class WorkItem:
    """One independent piece of work.

    Attributes
    ----------
    key : str
        Unique, stable name of the item (its line in a checkpoint), e.g. ``"n=20/block=3"``.
    argument : Any
        What the work function receives; must be picklable, and carry its own seed.
    cost : float
        Rough relative cost; a pool starts the costly items first, which only affects speed.
    """

    key: str
    argument: Any
    cost: float = 1.0


def default_workers() -> int:
    """The cores this process may run on (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def check_workers(workers: Any) -> int:
    """``workers`` as a positive count; ``None`` or 0 mean :func:`default_workers`."""
    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise InvalidInput(f"workers={workers!r} must be an integer >= 1 (0: one per core)")
    return workers or default_workers()


def check_scheduler(address: Any) -> str | None:
    """A Dask scheduler address such as ``tcp://10.0.0.5:8786``, or ``None``."""
    if address is None or address == "":
        return None
    if not isinstance(address, str) or "://" not in address or address.endswith("://"):
        raise InvalidInput(
            f"scheduler={address!r} must be a Dask scheduler address like tcp://HOST:PORT"
        )
    return address


def scheduler_from_env() -> str | None:
    """The scheduler named by ``$LTBOUNDS_SCHEDULER`` (checked), or ``None``."""
    return check_scheduler(os.environ.get(SCHEDULER_ENV))


# --------------------------------------------------------------------------- checkpoints


class Checkpoint:
    """Append-only JSON-lines record of finished items, for resuming an interrupted job.

    Line 1: ``{"format": "ltbounds-checkpoint", "version": 1, "job": JOB}``; then one line
    ``{"key": KEY, "result": RESULT}`` per finished item, each flushed and fsync'ed.

    Parameters
    ----------
    path : path-like
        The file; created (with its folder) when missing.
    job : mapping
        JSON description of the whole job (function, grid, seed, ...). Resuming a checkpoint
        whose job differs is refused: its items would not belong to this run.
    """

    def __init__(self, path: str | os.PathLike[str], job: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.job = json.loads(json.dumps(dict(job)))
        self._handle: Any = None

    def load(self, keys: Sequence[str]) -> dict[str, Any]:
        """Read the finished items (only those in ``keys`` may appear) and open for appending."""
        done: dict[str, Any] = {}
        allowed = set(keys)
        if self.path.is_dir():
            raise InvalidInput(f"checkpoint={str(self.path)!r} is a folder; expected a file")
        data = self.path.read_bytes() if self.path.exists() else b""
        complete = data[: data.rfind(b"\n") + 1]  # a torn last line is dropped
        lines = complete.decode("utf-8", errors="replace").splitlines()
        if lines:
            self._check_header(lines[0])
            for number, line in enumerate(lines[1:], start=2):
                try:
                    entry = json.loads(line)
                    key, result = entry["key"], entry["result"]
                except (ValueError, TypeError, KeyError):
                    raise ModelFormatError(
                        f"checkpoint {str(self.path)!r} line {number} is not an item record "
                        '{"key": ..., "result": ...}'
                    ) from None
                if key not in allowed:
                    raise ModelFormatError(
                        f"checkpoint {str(self.path)!r} line {number} holds item {key!r}, "
                        "which is not part of this job"
                    )
                done.setdefault(key, result)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "r+b" if self.path.exists() else "w+b")  # noqa: SIM115
        handle.truncate(len(complete) if lines else 0)
        handle.seek(0, os.SEEK_END)
        self._handle = handle
        if not lines:
            header = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "job": self.job}
            self._write(header)
            _fsync_folder(self.path.parent)
        return done

    def _check_header(self, line: str) -> None:
        try:
            header = json.loads(line)
            kind, version, job = header["format"], header["version"], header["job"]
        except (ValueError, TypeError, KeyError):
            raise ModelFormatError(
                f"checkpoint {str(self.path)!r} does not start with an ltbounds checkpoint header"
            ) from None
        if kind != CHECKPOINT_FORMAT:
            raise ModelFormatError(
                f"checkpoint {str(self.path)!r} has format={kind!r}; expected {CHECKPOINT_FORMAT!r}"
            )
        if version != CHECKPOINT_VERSION:
            raise ModelFormatError(
                f"checkpoint {str(self.path)!r} has version={version!r}; this ltbounds reads "
                f"version {CHECKPOINT_VERSION}"
            )
        if job != self.job:
            differing = sorted(
                key for key in set(job) | set(self.job) if job.get(key) != self.job.get(key)
            )
            raise InvalidInput(
                f"checkpoint {str(self.path)!r} belongs to another job (differs in "
                f"{', '.join(differing) or 'its description'}); use a new checkpoint file"
            )

    def append(self, key: str, result: Any) -> None:
        """Record one finished item durably (write, flush, fsync)."""
        self._write({"key": key, "result": result})

    def _write(self, entry: Mapping[str, Any]) -> None:
        self._handle.write((json.dumps(entry, allow_nan=False) + "\n").encode("utf-8"))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        """Close the file (the records are already on disk)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _as_json(result: Any) -> Any:
    try:
        return json.loads(json.dumps(result, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise InvalidInput(
            f"a work item returned {type(result).__name__} ({error}); checkpointed results "
            "must be JSON values (numbers, strings, lists, dicts)"
        ) from None


# --------------------------------------------------------------------------- running


def run_items(
    function: Callable[[Any], Any],
    items: Sequence[WorkItem],
    *,
    workers: int | None = None,
    scheduler: Any = None,
    checkpoint: str | os.PathLike[str] | None = None,
    job: Mapping[str, Any] | None = None,
    progress: Callable[[WorkItem, Any], None] | None = None,
) -> list[Any]:
    """``[function(item.argument) for item in items]``, run serially, on a pool or on Dask.

    Parameters
    ----------
    function : callable
        A module-level function (it is pickled by reference for a pool or a cluster).
    items : sequence of WorkItem
        The work, with unique keys.
    workers : int, optional
        Local processes; ``1`` runs in this process, ``None`` or ``0`` one per core.
        Ignored when ``scheduler`` is given.
    scheduler : str or distributed.Client, optional
        Address of a Dask scheduler (``tcp://HOST:PORT``), or a connected client.
    checkpoint : path-like, optional
        JSON-lines checkpoint to resume from and to append finished items to (see
        :class:`Checkpoint`); results are then JSON values.
    job : mapping, optional
        Description of the job recorded in (and checked against) the checkpoint.
    progress : callable, optional
        Called in this process as ``progress(item, result)`` once per item (finished now or
        read from the checkpoint), in completion order.

    Returns
    -------
    list
        One result per item, in the order of ``items`` whatever ran where.
    """
    items = list(items)
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        duplicate = next(key for key in keys if keys.count(key) > 1)
        raise InvalidInput(f"work item key {duplicate!r} appears more than once; keys must be unique")
    address = scheduler if scheduler is None or not isinstance(scheduler, str) else check_scheduler(
        scheduler
    )
    workers = check_workers(workers)
    results: list[Any] = [None] * len(items)
    finished = [False] * len(items)
    record = None
    if checkpoint is not None:
        record = Checkpoint(checkpoint, job if job is not None else {"function": _name(function)})
    try:
        done = record.load(keys) if record is not None else {}
        for index, item in enumerate(items):
            if item.key in done:
                results[index], finished[index] = done[item.key], True
                if progress is not None:
                    progress(item, results[index])
        pending = [index for index in range(len(items)) if not finished[index]]
        # Costly items first: a better finish on a pool, and no effect on the results.
        pending.sort(key=lambda index: -items[index].cost)

        def finish(index: int, result: Any) -> None:
            if record is not None:
                result = _as_json(result)
                record.append(items[index].key, result)
            results[index] = result
            if progress is not None:
                progress(items[index], result)

        if not pending:
            pass
        elif address is not None:
            _run_dask(function, items, pending, address, finish)
        elif workers == 1 or len(pending) == 1:
            for index in pending:
                finish(index, function(items[index].argument))
        else:
            _run_pool(function, items, pending, min(workers, len(pending)), finish)
    finally:
        if record is not None:
            record.close()
    return results


def _name(function: Callable[..., Any]) -> str:
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', '?')}"


def _init_worker(parent: int, threads: int) -> None:
    """Pool worker set-up: numba threads, Ctrl-C left to the parent, exit with the parent."""
    for variable in _THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    if "numba" in sys.modules:  # already loaded by the spawn bootstrap: set it directly
        sys.modules["numba"].set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)  # the parent died (killed): never linger as an orphan

    threading.Thread(target=watch, name="ltbounds-parent-watch", daemon=True).start()


def _run_pool(
    function: Callable[[Any], Any],
    items: Sequence[WorkItem],
    pending: Sequence[int],
    workers: int,
    finish: Callable[[int, Any], None],
) -> None:
    import multiprocessing  # noqa: PLC0415
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait  # noqa: PLC0415
    from concurrent.futures.process import BrokenProcessPool  # noqa: PLC0415

    threads = max(1, default_workers() // workers)
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(os.getpid(), threads),
    )
    clean = False
    try:
        futures = {executor.submit(function, items[index].argument): index for index in pending}
        waiting = set(futures)
        while waiting:
            ready, waiting = wait(waiting, return_when=FIRST_COMPLETED)
            for future in sorted(ready, key=futures.__getitem__):
                try:
                    result = future.result()
                except BrokenProcessPool:
                    raise ResourceLimitError(
                        f"a worker process died (killed, or out of memory) while running item "
                        f"{items[futures[future]].key!r}; finished items are kept in the "
                        "checkpoint if one was given: rerun with it to resume"
                    ) from None
                finish(futures[future], result)
        clean = True
    finally:
        if clean:
            executor.shutdown(wait=True)
        else:
            _stop(executor)


def _stop(executor: Any) -> None:
    """Stop a pool now: cancel what is queued and terminate the running workers."""
    processes = list(getattr(executor, "_processes", {}).values())  # no public API before 3.14
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


def _run_dask(
    function: Callable[[Any], Any],
    items: Sequence[WorkItem],
    pending: Sequence[int],
    scheduler: Any,
    finish: Callable[[int, Any], None],
) -> None:
    try:
        import distributed  # noqa: PLC0415  (optional: only when a scheduler is asked for)
    except ImportError:
        raise InvalidInput(
            "--scheduler needs dask.distributed, which is not installed "
            "(pip install 'ltbounds[dask]'), or run without --scheduler"
        ) from None
    own_client = isinstance(scheduler, str)
    if own_client:
        try:
            client = distributed.Client(scheduler, timeout=10, set_as_default=False)
        except (OSError, TimeoutError) as error:
            raise InvalidInput(
                f"scheduler={scheduler!r} is not reachable ({type(error).__name__}: {error}); "
                "start one with 'dask scheduler' (see docs/parallel.md)"
            ) from None
    else:
        client = scheduler
    futures: dict[Any, int] = {}
    try:
        for index in pending:
            future = client.submit(function, items[index].argument, pure=False)
            futures[future] = index
        for future in distributed.as_completed(list(futures), loop=client.loop):
            finish(futures[future], future.result())
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        if own_client:
            client.close()


__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "Checkpoint",
    "SCHEDULER_ENV",
    "WorkItem",
    "check_scheduler",
    "check_workers",
    "default_workers",
    "run_items",
    "scheduler_from_env",
]
