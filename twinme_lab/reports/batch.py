"""Run trait reports for many participants in parallel processes.

Reports run in worker processes, each of which opens the workspace itself and
starts a kernel per report. The workers find the key the same way this process
did, through the inherited environment. Workers and their notebooks open the
database read-only, because DuckDB lets only one process at a time attach a file
read-write, and parallel reports would otherwise wait on each other's lock.

A process that writes several reports keeps one read-only connection for the
whole batch and starts each report's kernel one report ahead
(:class:`ProcessState`), so the kernel's start-up runs while the report before
it executes instead of leaving the process waiting. While a batch runs, a command
that writes to the workspace fails as busy.

A participant whose report folder already contains a report of the same data
fingerprint and mapping version is skipped, so an interrupted batch resumes where
it stopped. This process checks that before it starts any worker, reading every
participant's data over one read-only connection. A failed report does not stop
the others: its error is written to ``report_error.txt`` in its folder.

Ctrl-C stops a batch within seconds: reports not yet started are cancelled,
running ones are abandoned with their kernels shut down, and the reports
already written stay. Each participant not written gets the status
"interrupted", and a rerun resumes with them.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .. import participants
from ..errors import TwinMeError, UsageError
from ..logs import redact
from ..store import THREADS_ENV
from ..workspace import Workspace, open_workspace
from .data import load_report_data
from .runner import (
    ERROR_NAME,
    HTML_NAME,
    SCORES_NAME,
    ReportKernel,
    close_open_kernels,
    execute_report,
    is_current,
    kernel_environment,
    report_folder,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportOutcome:
    """The outcome of one participant's report: written, skipped or failed."""

    participant_id: str
    status: str
    folder: str
    html: str | None = None
    error: str | None = None
    seconds: float | None = None

    def as_dict(self) -> dict:
        return {
            "participant": self.participant_id,
            "status": self.status,
            "folder": self.folder,
            "html": self.html,
            "error": self.error,
            "seconds": self.seconds,
        }


@dataclass
class BatchResult:
    """The outcomes of a batch, in participant order."""

    outcomes: list[ReportOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def interrupted(self) -> bool:
        """Tell whether Ctrl-C stopped the batch before every report was done."""
        return self.count("interrupted") > 0

    @property
    def failed(self) -> list[ReportOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def as_dict(self) -> dict:
        return {
            "written": self.count("written"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "interrupted": self.count("interrupted"),
            "reports": [o.as_dict() for o in self.outcomes],
        }


# Thread pools of DuckDB and of the numeric libraries a report notebook loads.
THREAD_VARIABLES = (
    THREADS_ENV,
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


@contextmanager
def threads_per_worker(count: int) -> Iterator[None]:
    """Cap the thread pools of workers started inside this block at ``count``.

    Spawned workers and the kernels they start inherit this process's
    environment, so the cap is set there for the block and removed afterwards.
    A variable the user has set already is left as it is.
    """
    added = [name for name in THREAD_VARIABLES if name not in os.environ]
    for name in added:
        os.environ[name] = str(count)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def default_jobs() -> int:
    """Return the number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class KernelSupply:
    """Report kernels for one process, each started while the report before runs.

    :meth:`take` returns the kernel started at the previous call, or a new one,
    and starts the next one at once. A kernel start took about 0.3 s of CPU in
    ``benchmarks/bench_reports.py``. Started ahead, that start-up fills the time
    its process would otherwise spend waiting on the running report's kernel,
    and the next report finds its kernel ready. Kernels start in the
    workspace's ``reports`` folder, and the runner moves each to its report's
    folder. :meth:`close` stops the kernel started last, which may never be
    taken.
    """

    def __init__(self) -> None:
        self._next: ReportKernel | None = None

    def take(self, ws: Workspace) -> ReportKernel:
        env = kernel_environment(ws)
        folder = Path(ws.root).resolve() / "reports"
        kernel, self._next = self._next, None
        if kernel is not None and (kernel.env != env or not kernel.is_alive()):
            kernel.close()
            kernel = None
        if kernel is None:
            folder.mkdir(parents=True, exist_ok=True)
            kernel = ReportKernel(env, folder)
        try:
            self._next = ReportKernel(env, folder)
        except (RuntimeError, OSError) as exc:
            # The next report starts its own kernel and reports any failure.
            log.warning(
                "starting the next report's kernel failed: %s", redact(str(exc))
            )
        return kernel

    def close(self) -> None:
        kernel, self._next = self._next, None
        if kernel is not None:
            kernel.close()


class ProcessState:
    """The resources a process writing several reports keeps between reports.

    A :class:`KernelSupply`, and the workspace opened read-only with one
    connection kept open (:meth:`Workspace.keep_open`). Each new connection
    loads DuckDB's cipher extension; kept, the process attaches the database
    once per batch instead of twice per report. The process then holds a
    read-only lock on the database until :meth:`close`, so a command that writes
    to the workspace waits for the batch to finish. Reports of one batch read
    the same data.
    """

    def __init__(self) -> None:
        self.kernels = KernelSupply()
        self._workspace: Workspace | None = None
        self._open_connection = ExitStack()

    def workspace(self, root: str) -> Workspace:
        """Return the workspace at ``root``, opened read-only and kept open."""
        if self._workspace is not None and str(self._workspace.root) == root:
            return self._workspace
        self._close_workspace()
        ws = open_workspace(root, read_only=True)
        self._open_connection.enter_context(ws.keep_open(read_only=True))
        self._workspace = ws
        return ws

    def _close_workspace(self) -> None:
        self._workspace = None
        self._open_connection.close()

    def close(self) -> None:
        try:
            self.kernels.close()
        finally:
            self._close_workspace()


_process_state: ProcessState | None = None


def process_state() -> ProcessState:
    """Return this process's :class:`ProcessState`, closed when the process exits.

    A worker process of the pool exits through multiprocessing, which runs its
    finalizers but not ``atexit`` handlers. The finalizer stops the last kernel,
    closes the connection, and stops any kernel an interrupted report could not
    close.
    """
    global _process_state
    if _process_state is None:
        _process_state = ProcessState()
        multiprocessing.util.Finalize(
            _process_state, _close_at_exit, args=(_process_state,), exitpriority=10
        )
    return _process_state


def _close_at_exit(state: ProcessState) -> None:
    try:
        state.close()
    finally:
        close_open_kernels()


# True in a pool worker while report_one runs; read by its SIGTERM handler.
_report_running = False


def leave_interrupts_to_parent() -> None:
    """Set a pool worker's signal handlers: the parent process stops the batch.

    A terminal's Ctrl-C sends SIGINT to the whole foreground process group. A
    worker interrupted inside a report would return the interruption as that
    report's exception and go on with the next one, so workers ignore SIGINT
    and the parent stops them with SIGTERM. SIGTERM raises KeyboardInterrupt in
    a running report, whose kernel is then shut down, and exits an idle worker.
    Either way the worker's finalizers stop its spare kernel.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_worker)


def _stop_worker(signum, frame) -> None:
    if _report_running:
        raise KeyboardInterrupt
    sys.exit(0)


def report_one(
    root: str,
    participant_id: str,
    mapping: str | None,
    force: bool,
    notebook: str | None = None,
    keep: bool = False,
) -> ReportOutcome:
    """Write one participant's report unless it is current.

    A :class:`TwinMeError` becomes a "failed" outcome, with its message written to
    ``report_error.txt``; other exceptions propagate. With ``keep`` the
    workspace and the kernel come from :func:`process_state`, which keeps a
    connection and a kernel for the next call until :meth:`ProcessState.close`
    or the process's exit; a Dask worker, which outlives the batch, leaves it
    off.

    This runs in a worker process, so it takes the workspace folder, not a
    :class:`Workspace`, and opens the workspace itself, read-only.
    """
    global _report_running
    _report_running = True
    try:
        return _report_one(root, participant_id, mapping, force, notebook, keep)
    finally:
        _report_running = False


def _report_one(
    root: str,
    participant_id: str,
    mapping: str | None,
    force: bool,
    notebook: str | None,
    keep: bool,
) -> ReportOutcome:
    started = time.monotonic()
    folder = Path(root) / "reports" / participant_id
    log.debug("report of %s started in process %d", participant_id, os.getpid())
    try:
        state = process_state() if keep else None
        ws = state.workspace(root) if state else open_workspace(root, read_only=True)
        report = load_report_data(ws, participant_id, mapping)
        if not force and is_current(folder, report):
            return ReportOutcome(
                participant_id, "skipped", str(folder), html=str(folder / HTML_NAME)
            )
        kernel = state.kernels.take(ws) if state else None
        paths = execute_report(ws, report, notebook=notebook, kernel=kernel)
    except TwinMeError as exc:
        message = redact(str(exc))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ERROR_NAME).write_text(message + "\n", encoding="utf-8")
        log.warning("report of %s failed: %s", participant_id, message)
        return ReportOutcome(
            participant_id,
            "failed",
            str(folder),
            error=message,
            seconds=round(time.monotonic() - started, 3),
        )
    return ReportOutcome(
        participant_id,
        "written",
        str(folder),
        html=str(paths.html),
        seconds=round(time.monotonic() - started, 3),
    )


def run_reports(
    workspace,
    participant_ids: Iterable[str] | None = None,
    mapping: str | None = None,
    jobs: int | None = None,
    force: bool = False,
    progress: Callable[[ReportOutcome], None] | None = None,
    scheduler: str | None = None,
    notebook: str | os.PathLike | None = None,
) -> BatchResult:
    """Write the reports of several participants (default: all), ``jobs`` at a time.

    ``progress`` is called in this process with each outcome as it arrives. With
    ``scheduler`` (a Dask scheduler address) the reports run on that cluster's
    workers instead of local processes; see :mod:`twinme_lab.reports.cluster`
    for how the workers get the database key. ``notebook`` replaces the report
    notebook. A report is skipped by its data fingerprint and mapping version
    only, so pass ``force`` after changing the notebook.
    """
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    enrolled = [r["participant_id"] for r in participants.list_participants(ws)]
    if participant_ids is None:
        chosen = enrolled
    else:
        chosen = list(participant_ids)
        known = set(enrolled)
        for participant_id in chosen:
            if participant_id not in known:
                # Raises NotFoundError with the usual message.
                participants.get(ws, participant_id)
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {jobs}.")
    if scheduler is not None and jobs is not None:
        raise UsageError(
            "--jobs applies to local runs only; with --scheduler the cluster's "
            "workers and their threads set how many reports run at once."
        )
    notebook = str(Path(notebook).resolve()) if notebook else None

    outcomes: dict[str, ReportOutcome] = {}
    pending = list(chosen)
    if not force:
        for outcome in skip_current(ws, chosen, mapping):
            outcomes[outcome.participant_id] = outcome
            if progress:
                progress(outcome)
        pending = [p for p in chosen if p not in outcomes]

    if scheduler is not None:
        from .cluster import run_on_cluster

        ran = run_on_cluster(ws, pending, scheduler, mapping, force, progress, notebook)
        outcomes.update((o.participant_id, o) for o in ran.outcomes)
        return BatchResult([outcomes[p] for p in chosen])
    if not pending:
        return BatchResult([outcomes[p] for p in chosen])
    workers = min(jobs or default_jobs(), len(pending))
    root = str(Path(ws.root).resolve())

    # A partial of a module-level function pickles, so pool workers can run it.
    write_report = functools.partial(
        report_one, root, mapping=mapping, force=force, notebook=notebook, keep=True
    )
    if workers == 1:
        run_in_this_process(ws, write_report, pending, outcomes, progress)
    else:
        run_in_pool(ws, write_report, pending, workers, outcomes, progress)
    for participant_id in pending:
        if participant_id not in outcomes:
            outcomes[participant_id] = ReportOutcome(
                participant_id,
                "interrupted",
                str(report_folder(ws, participant_id)),
            )
    return BatchResult([outcomes[p] for p in chosen])


def run_in_this_process(
    ws: Workspace,
    write_report: Callable[[str], ReportOutcome],
    pending: list[str],
    outcomes: dict[str, ReportOutcome],
    progress: Callable[[ReportOutcome], None] | None,
) -> None:
    """Write the pending reports one after the other, adding to ``outcomes``.

    ``write_report`` writes one participant's report (:func:`report_one` with
    the batch's arguments).

    Ctrl-C stops the loop: the running report's kernel is shut down on the way
    out, and the participants without an outcome are left for the caller. A
    library may turn the KeyboardInterrupt into an error of its own, as DuckDB
    does, so the loop also stops on any failure that follows a SIGINT.
    """
    with sigint_recorded() as interrupted:
        try:
            for participant_id in pending:
                try:
                    outcome = write_report(participant_id)
                except Exception as exc:  # one broken report must not stop the batch
                    if interrupted.is_set():
                        break
                    outcome = crashed_outcome(ws, participant_id, exc)
                if interrupted.is_set() and outcome.status == "failed":
                    break
                outcomes[participant_id] = outcome
                if progress:
                    progress(outcome)
                if interrupted.is_set():
                    break
        except KeyboardInterrupt:
            pass
        finally:
            process_state().close()
    if interrupted.is_set():
        close_open_kernels()
        log.warning("batch interrupted after %d reports", len(outcomes))


@contextmanager
def sigint_recorded() -> Iterator[threading.Event]:
    """Set the returned event on SIGINT, and raise KeyboardInterrupt as usual.

    Only the main thread can set signal handlers; elsewhere the event is never
    set and Ctrl-C behaves as before.
    """
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def record(signum, frame) -> None:
        interrupted.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, record)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def run_in_pool(
    ws: Workspace,
    write_report: Callable[[str], ReportOutcome],
    pending: list[str],
    workers: int,
    outcomes: dict[str, ReportOutcome],
    progress: Callable[[ReportOutcome], None] | None,
) -> None:
    """Write the pending reports in ``workers`` processes, adding to ``outcomes``.

    On Ctrl-C, reports not yet started are cancelled and the workers are sent
    SIGTERM (see :func:`leave_interrupts_to_parent`). The participants without
    an outcome are left for the caller.
    """
    # spawn: a forked child would inherit this process's threads and locks.
    context = multiprocessing.get_context("spawn")
    children_before = set(multiprocessing.active_children())
    with threads_per_worker(max(1, default_jobs() // workers)):
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=leave_interrupts_to_parent,
        )
        futures: dict[Future, str] = {}
        try:
            for participant_id in pending:
                futures[pool.submit(write_report, participant_id)] = participant_id
            collect_outcomes(ws, futures, outcomes, progress)
        except KeyboardInterrupt:
            log.warning("batch interrupted after %d reports", len(outcomes))
            pool.shutdown(wait=False, cancel_futures=True)
            stop_processes(set(multiprocessing.active_children()) - children_before)
        finally:
            pool.shutdown(wait=True)
        # Reports that were written between the interrupt and the workers' stop.
        # One that failed then may have failed because of the stop, so it counts
        # as interrupted.
        for future, participant_id in futures.items():
            if participant_id in outcomes or not future.done() or future.cancelled():
                continue
            if future.exception() is None and future.result().status != "failed":
                outcomes[participant_id] = future.result()


def collect_outcomes(
    ws: Workspace,
    futures: dict[Future, str],
    outcomes: dict[str, ReportOutcome],
    progress: Callable[[ReportOutcome], None] | None,
) -> None:
    """Add the outcome of each report future to ``outcomes`` as it ends."""
    for future in as_completed(futures):
        participant_id = futures[future]
        try:
            outcome = future.result()
        except Exception as exc:  # a crashed worker must not stop the batch
            outcome = crashed_outcome(ws, participant_id, exc)
        outcomes[participant_id] = outcome
        if progress:
            progress(outcome)


def stop_processes(processes: Iterable[multiprocessing.process.BaseProcess]) -> None:
    """Send SIGTERM to ``processes`` and wait for them; kill any still alive.

    The wait gives a worker time to shut down its kernels, and is cut short by
    another Ctrl-C or after 30 seconds.
    """
    processes = list(processes)
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + 30
    try:
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
    except KeyboardInterrupt:
        pass
    for process in processes:
        if process.is_alive():
            log.warning("report worker %d did not stop; killing it", process.pid)
            process.kill()
            process.join(5)


def skip_current(
    ws: Workspace, participant_ids: list[str], mapping: str | None
) -> list[ReportOutcome]:
    """Return a "skipped" outcome for each participant whose report is current.

    Only folders that contain both a report page and ``trait_scores.json`` are
    compared, so a first run reads nothing here. The data of the others is read
    over one read-only connection. A participant whose data cannot be loaded is
    left to its worker, which records the error as a failed outcome.
    """
    skipped = []
    reports = Path(ws.root).resolve() / "reports"
    candidates = [
        participant_id
        for participant_id in participant_ids
        if (reports / participant_id / SCORES_NAME).is_file()
        and (reports / participant_id / HTML_NAME).is_file()
    ]
    if not candidates:
        return skipped
    with ws.keep_open(read_only=True):
        for participant_id in candidates:
            folder = reports / participant_id
            try:
                report = load_report_data(ws, participant_id, mapping)
            except TwinMeError:
                continue
            if is_current(folder, report):
                skipped.append(
                    ReportOutcome(
                        participant_id,
                        "skipped",
                        str(folder),
                        html=str(folder / HTML_NAME),
                    )
                )
    log.info(
        "%d of %d reports are current and skipped", len(skipped), len(participant_ids)
    )
    return skipped


def crashed_outcome(
    ws: Workspace, participant_id: str, exc: Exception
) -> ReportOutcome:
    """Record an unexpected report failure as a failed outcome and log it."""
    message = redact(f"The report run crashed: {type(exc).__name__}: {exc}")
    folder = report_folder(ws, participant_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ERROR_NAME).write_text(message + "\n", encoding="utf-8")
    log.error("report of %s crashed: %s", participant_id, type(exc).__name__)
    return ReportOutcome(participant_id, "failed", str(folder), error=message)
