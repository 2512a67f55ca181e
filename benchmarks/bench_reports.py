"""Benchmark: participant reports in parallel against a serial papermill loop.

Builds a workspace of N simulated participants (``twinme_lab.simulate``: Spotify
extended history and Netflix ViewingActivity.csv per participant, IPIP-50
answers, imported through the ordinary importers), scores their traits, then
times these on the same workspace:

1. kernel start: papermill runs a notebook with one empty cell through the
   report runner's own kernel setup, repeated, median taken;
2. papermill loop, the baseline: for one participant after the other,
   ``papermill.execute_notebook`` with papermill's own engine and kernel
   manager, then the same HTML page and ``trait_scores.json`` that
   ``run_report`` writes. The kernel gets only the derived database key in its
   environment, as the product's kernels do;
3. serial: ``run_report`` for one participant after the other, to tell the
   gain of the parallel workers from that of the runner itself;
4. parallel: ``run_reports(jobs=J, force=True)``, J worker processes;
4b. with ``--one-job``: ``run_reports(jobs=1, force=True)``, the batch engine in
   this process (one connection, kernels started one report ahead);
5. up-to-date rerun: ``run_reports(jobs=J)`` again, where every report is
   current and is skipped.

Each phase prints the 1-minute load average at its start and end, because the
ratio means little when other processes compete for the cores. It also prints
the CPU seconds this process and its finished children (workers and kernels)
used, divided by the wall seconds: the cores the phase actually got. The
parallel phase also prints the sum of the per-report seconds divided by its
wall time, the mean number of reports running at once.

With ``--dask`` it also times ``run_reports(scheduler=...)`` on a LocalCluster
of J single-threaded worker processes on 127.0.0.1, started before the clock.

Target: papermill loop / parallel at least 1.8x with J = 2 on two cores.

Usage::

    .venv/bin/python benchmarks/bench_reports.py [--participants 200] [--jobs 2]
        [--seed 1] [--dask] [--one-job] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import nbformat
import papermill

from twinme_lab import keys, participants, simulate, traits
from twinme_lab.reports import load_report_data, runner
from twinme_lab.reports.batch import run_reports
from twinme_lab.reports.html import export_html
from twinme_lab.workspace import open_workspace


def build_workspace(root: Path, n: int, seed: int):
    started = time.monotonic()
    # The simulator makes at least 10 participants; the reports use the first n.
    simulate.run_simulation(root, max(n, 10), seed)
    ws = open_workspace(root)
    traits.score(ws)
    print(f"built {max(n, 10)} participants in {time.monotonic() - started:.1f} s")
    return ws


def time_kernel_start(ws, folder: Path, repeats: int) -> float:
    """Return the median seconds of a papermill run of a one-cell empty notebook."""
    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "empty.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("pass"))
    nbformat.write(notebook, empty)
    seconds = []
    for _ in range(repeats):
        started = time.monotonic()
        runner._execute_notebook(ws, folder / "out.ipynb", {}, folder, empty)
        seconds.append(time.monotonic() - started)
    return statistics.median(seconds)


def time_papermill_loop(ws, participant_ids: list[str]) -> float:
    """Return the seconds of a plain papermill loop writing the same report files.

    papermill's stock kernel inherits this process's environment, so for the
    loop that environment contains the derived database key in place of the master
    key, as a researcher's script should.
    """
    master_key = os.environ.pop(keys.KEY_ENV)
    os.environ[keys.DATABASE_KEY_ENV] = ws.key.database_key()
    try:
        started = time.monotonic()
        for participant_id in participant_ids:
            report = load_report_data(ws, participant_id)
            folder = ws.reports_dir / participant_id
            folder.mkdir(parents=True, exist_ok=True)
            parameters = runner.report_parameters(ws, report, folder)
            notebook_started = time.monotonic()
            papermill.execute_notebook(
                str(runner.notebook_path()),
                str(folder / runner.NOTEBOOK_NAME),
                parameters=parameters,
                kernel_name=runner.KERNEL_NAME,
                progress_bar=False,
                cwd=str(folder),
            )
            seconds = time.monotonic() - notebook_started
            export_html(
                folder / runner.NOTEBOOK_NAME,
                folder / runner.HTML_NAME,
                f"Trait report {participant_id}",
            )
            document = runner.scores_document(report, parameters, seconds)
            (folder / runner.SCORES_NAME).write_text(
                json.dumps(document, indent=2, sort_keys=True) + "\n",
                encoding="utf-8",
            )
        return time.monotonic() - started
    finally:
        os.environ.pop(keys.DATABASE_KEY_ENV)
        os.environ[keys.KEY_ENV] = master_key


def time_serial(ws, participant_ids: list[str]) -> float:
    started = time.monotonic()
    for participant_id in participant_ids:
        runner.run_report(ws, participant_id)
    return time.monotonic() - started


def time_parallel(ws, participant_ids: list[str], jobs: int) -> tuple[float, float]:
    """Return the wall seconds and the mean number of reports running at once."""
    started = time.monotonic()
    result = run_reports(ws, participant_ids, jobs=jobs, force=True)
    seconds = time.monotonic() - started
    if result.failed:
        raise SystemExit(f"{len(result.failed)} parallel reports failed")
    busy = sum(outcome.seconds or 0.0 for outcome in result.outcomes)
    return seconds, busy / seconds


def time_rerun(ws, participant_ids: list[str], jobs: int) -> float:
    started = time.monotonic()
    result = run_reports(ws, participant_ids, jobs=jobs)
    seconds = time.monotonic() - started
    skipped = result.count("skipped")
    if skipped != len(participant_ids):
        raise SystemExit(f"only {skipped} of {len(participant_ids)} were skipped")
    return seconds


def cpu_seconds() -> float:
    """Return the CPU seconds of this process and of its waited-for children."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@contextmanager
def phase(name: str):
    """Print the load average, and the cores used, of a timed phase."""
    load_before = os.getloadavg()[0]
    cpu_before = cpu_seconds()
    started = time.monotonic()
    yield
    wall = time.monotonic() - started
    cpu = cpu_seconds() - cpu_before
    print(
        f"  [{name}: load average {load_before:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end; {cpu:.1f} CPU s, "
        f"{cpu / wall:.2f} cores used]"
    )


def time_dask(ws, participant_ids: list[str], jobs: int) -> float:
    import distributed

    environment = {keys.DATABASE_KEY_ENV: ws.key.database_key()}
    saved = {name: os.environ.pop(name, None) for name in (keys.KEY_ENV,)}
    try:
        # Workers inherit this environment when spawned: keep the master key out.
        cluster = distributed.LocalCluster(
            n_workers=jobs,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            env=environment,
        )
    finally:
        for name, value in saved.items():
            if value is not None:
                os.environ[name] = value
    with cluster:
        started = time.monotonic()
        result = run_reports(
            ws, participant_ids, force=True, scheduler=cluster.scheduler_address
        )
        seconds = time.monotonic() - started
    if result.failed:
        raise SystemExit(f"{len(result.failed)} Dask reports failed")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kernel-repeats", type=int, default=5)
    parser.add_argument("--dask", action="store_true")
    parser.add_argument(
        "--one-job", action="store_true", help="also time run_reports(jobs=1)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the workspace")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    os.environ[keys.CONFIG_DIR_ENV] = str(base / "config")
    os.environ[keys.KEY_ENV] = keys.generate_key()
    os.environ.pop(keys.KEY_FILE_ENV, None)
    os.environ.pop(keys.DATABASE_KEY_ENV, None)
    print(
        f"{platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    ws = build_workspace(base / "ws", args.participants, args.seed)
    enrolled = participants.list_participants(ws)
    participant_ids = [row["participant_id"] for row in enrolled][: args.participants]
    n = len(participant_ids)

    with phase("kernel start"):
        kernel = time_kernel_start(ws, base / "kernel", args.kernel_repeats)
    print(f"kernel start (empty notebook, median): {kernel:.2f} s")
    with phase("papermill loop"):
        loop = time_papermill_loop(ws, participant_ids)
    print(f"papermill loop: {loop:.1f} s, {loop / n:.2f} s per report")
    with phase("serial"):
        serial = time_serial(ws, participant_ids)
    print(f"run_report loop: {serial:.1f} s, {serial / n:.2f} s per report")
    with phase("parallel"):
        parallel, running = time_parallel(ws, participant_ids, args.jobs)
    print(
        f"run_reports(jobs={args.jobs}): {parallel:.1f} s, "
        f"{parallel / n:.2f} s per report, "
        f"{running:.2f} reports running at once on average"
    )
    print(f"speed-up papermill loop / parallel: {loop / parallel:.2f}x (target 1.8x)")
    print(f"speed-up run_report loop / parallel: {serial / parallel:.2f}x")
    print(
        f"per report beyond kernel start: papermill loop {loop / n - kernel:.2f} s, "
        f"run_report loop {serial / n - kernel:.2f} s"
    )
    if args.one_job:
        with phase("batch, one job"):
            one_job, _ = time_parallel(ws, participant_ids, 1)
        print(
            f"run_reports(jobs=1): {one_job:.1f} s, {one_job / n:.2f} s per report, "
            f"papermill loop / one job {loop / one_job:.2f}x, "
            f"serial / one job {serial / one_job:.2f}x, "
            f"one job / parallel {one_job / parallel:.2f}x"
        )
    with phase("up-to-date rerun"):
        rerun = time_rerun(ws, participant_ids, args.jobs)
    print(f"up-to-date rerun: {rerun:.1f} s, {rerun / n:.3f} s per participant")
    if args.dask:
        with phase("dask"):
            on_cluster = time_dask(ws, participant_ids, args.jobs)
        print(
            f"run_reports on LocalCluster ({args.jobs} workers): {on_cluster:.1f} s, "
            f"speed-up over the papermill loop {loop / on_cluster:.2f}x, "
            f"over the run_report loop {serial / on_cluster:.2f}x"
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.keep:
        print(f"workspace kept in {base}")
    else:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
