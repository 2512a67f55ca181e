"""Run the trait report notebook for one participant with papermill.

The notebook runs in a fresh kernel of the running interpreter. Only the derived
database key reaches that kernel, through its environment
(``TWINME_DATABASE_KEY``). It is never a papermill parameter, because papermill
writes the parameters into the output notebook. The report folder gets the
executed notebook, a standalone HTML page without code, and
``trait_scores.json`` with the numbers and their provenance.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path
from queue import Empty

import papermill
from jupyter_client import BlockingKernelClient, KernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

from .. import keys
from ..errors import NotFoundError, TwinMeError
from ..logs import redact
from ..workspace import Workspace, open_workspace
from .data import ReportData, load_report_data
from .engine import ENGINE_NAME
from .html import export_html

log = logging.getLogger(__name__)

KERNEL_NAME = "python3"
NOTEBOOK_NAME = "trait_report.ipynb"
HTML_NAME = "trait_report.html"
SCORES_NAME = "trait_scores.json"
FAILED_NAME = "trait_report.failed.ipynb"
ERROR_NAME = "report_error.txt"

# Seconds to wait for the kernel to start; a cold start on a slow disk can take
# several seconds.
KERNEL_START_TIMEOUT = 120


class ReportError(TwinMeError):
    """The report notebook failed; its partial output is kept in the report folder."""


@dataclass(frozen=True)
class ReportPaths:
    """The files one report run wrote."""

    participant_id: str
    folder: Path
    notebook: Path
    html: Path
    scores: Path

    def as_dict(self) -> dict:
        return {
            "participant": self.participant_id,
            "folder": str(self.folder),
            "notebook": str(self.notebook),
            "html": str(self.html),
            "scores": str(self.scores),
        }


class InterpreterKernelSpecs(KernelSpecManager):
    """Kernel specs where ``python3`` is always ipykernel on the running interpreter.

    A ``python3`` spec in the user's Jupyter folder can point at another Python that
    lacks twinme_lab; jupyter_client would pick it before the virtual
    environment's own. Reports must run with the interpreter that runs the runner.
    """

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name != KERNEL_NAME:
            return super().get_kernel_spec(kernel_name)
        from ipykernel.kernelspec import RESOURCES, get_kernel_dict

        return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())


def find_notebook(name: str) -> Path:
    """Return a notebook from the repository's ``notebooks/``, else the package's copy.

    An editable install reads the repository's ``notebooks/``; an installed wheel
    carries a copy under ``twinme_lab/notebooks/``.
    """
    repository_copy = Path(__file__).resolve().parents[2] / "notebooks" / name
    if repository_copy.is_file():
        return repository_copy
    packaged = resources.files("twinme_lab").joinpath("notebooks", name)
    if packaged.is_file():
        return Path(str(packaged))
    raise NotFoundError(
        f"The notebook {name} was not found in notebooks/ or in the installed "
        "package; reinstall twinme-lab."
    )


def notebook_path() -> Path:
    """Return the report notebook (see :func:`find_notebook`)."""
    return find_notebook(NOTEBOOK_NAME)


def package_version() -> str:
    """Return the installed twinme-lab version."""
    try:
        return metadata.version("twinme-lab")
    except metadata.PackageNotFoundError:
        from .. import __version__

        return __version__


def kernel_environment(ws: Workspace) -> dict[str, str]:
    """Return the kernel's environment: this process's, with the database key set.

    The kernel gets only the derived database key (``TWINME_DATABASE_KEY``), never
    the master key, so a notebook can read the workspace but not the token vault.
    """
    env = dict(os.environ)
    for name in (keys.KEY_ENV, keys.KEY_FILE_ENV, keys.DATABASE_KEY_ENV):
        env.pop(name, None)
    env.update(ws.worker_environment())
    # The debugger's frozen-module warning would land in the notebook's stderr.
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    return env


def report_folder(ws: Workspace, participant_id: str, output_dir=None) -> Path:
    """Return the participant's report folder (``reports/ID`` unless given)."""
    return Path(output_dir) if output_dir else ws.reports_dir / participant_id


def _as_workspace(workspace) -> Workspace:
    return workspace if isinstance(workspace, Workspace) else open_workspace(workspace)


def read_scores(folder: Path) -> dict | None:
    """Return a report folder's ``trait_scores.json``, or None if missing or damaged."""
    try:
        return json.loads((folder / SCORES_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_current(folder: Path, report: ReportData) -> bool:
    """Tell whether a folder contains a finished report of this data and mapping."""
    stored = read_scores(folder)
    if stored is None or not (folder / HTML_NAME).is_file():
        return False
    return (
        stored.get("data_fingerprint") == report.fingerprint
        and stored.get("mapping_version") == report.mapping_version
    )


def run_report(
    workspace,
    participant_id: str,
    mapping: str | None = None,
    output_dir=None,
) -> ReportPaths:
    """Execute the report notebook for one participant and write its three files.

    ``workspace`` is a :class:`Workspace` or a folder path. The files go to
    ``output_dir``, by default ``reports/<participant_id>`` in the workspace. A
    failed notebook raises :class:`ReportError` and leaves its partial output as
    ``trait_report.failed.ipynb`` with the error in ``report_error.txt``; the
    previous report, if any, stays in place.
    """
    ws = _as_workspace(workspace)
    report = load_report_data(ws, participant_id, mapping)
    return execute_report(ws, report, output_dir)


def report_parameters(ws: Workspace, report: ReportData, folder: Path) -> dict:
    """Return the report notebook's papermill parameters, which contain no key."""
    return {
        "workspace": str(ws.root.resolve()),
        "participant": report.participant_id,
        "mapping": report.mapping_version,
        "output_dir": str(folder.resolve()),
    }


def execute_report(
    ws: Workspace,
    report: ReportData,
    output_dir=None,
    notebook=None,
    kernel: ReportKernel | None = None,
) -> ReportPaths:
    """Execute the notebook for already loaded report data (see :func:`run_report`).

    ``notebook`` is the path of a report notebook to run in place of
    :func:`notebook_path`; it must take the same parameters. ``kernel`` is a
    kernel started beforehand with this workspace's :func:`kernel_environment`;
    by default a new one starts in the report folder. Either way it is closed.
    """
    participant_id = report.participant_id
    folder = report_folder(ws, participant_id, output_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except BaseException:
        if kernel is not None:
            kernel.close()
        raise
    parameters = report_parameters(ws, report, folder)
    paths = ReportPaths(
        participant_id,
        folder,
        folder / NOTEBOOK_NAME,
        folder / HTML_NAME,
        folder / SCORES_NAME,
    )
    partial = folder / "trait_report.running.ipynb"
    started = time.monotonic()
    try:
        _execute_notebook(ws, partial, parameters, folder, notebook, kernel)
    except KeyboardInterrupt:
        # An interrupted run leaves no partial notebook; the report is rerun.
        partial.unlink(missing_ok=True)
        raise
    seconds = time.monotonic() - started

    partial.replace(paths.notebook)
    export_html(paths.notebook, paths.html, f"Trait report {participant_id}")
    _write_json(paths.scores, scores_document(report, parameters, seconds))
    for stale in (folder / FAILED_NAME, folder / ERROR_NAME):
        stale.unlink(missing_ok=True)
    log.info("wrote report of %s in %.1f s", participant_id, seconds)
    return paths


class ReadyCheckClient(BlockingKernelClient):
    """A kernel client whose ready check returns once IOPub is shown to be live.

    jupyter_client's check (8.10) waits for the kernel_info reply and one IOPub
    message, as this one does, and then reads IOPub until it has been quiet for
    0.2 s. That wait repeats for every report, with nothing else running. Here
    IOPub is only emptied of what has already arrived, because nbclient reads
    only the messages that reply to its own requests and ignores a late status
    message anyway.
    """

    def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while True:
            self.kernel_info()
            try:
                reply = self.get_shell_msg(timeout=1)
            except Empty:
                reply = None
            # A reply to an earlier request counts, as in jupyter_client. A kernel
            # slower than the 1 s poll queues one reply per request sent meanwhile,
            # so waiting for the newest request's reply would stay one behind.
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:
                    # The kernel publishes its status for every request, so a
                    # message here shows the IOPub subscription is connected.
                    self.get_iopub_msg(timeout=0.2)
                except Empty:
                    pass
                else:
                    self._handle_kernel_info_reply(reply)
                    break
            if not self.is_alive():
                raise RuntimeError("The kernel died before it replied to kernel_info.")
            if time.monotonic() > deadline:
                raise RuntimeError(f"The kernel did not reply in {timeout:.0f} s.")
        while True:
            try:
                self.get_iopub_msg(timeout=0)
            except Empty:
                break


# Every ReportKernel of this process not yet closed. Ctrl-C can land between a
# kernel's start and the code that would close it; close_open_kernels stops
# what it left behind.
_open_kernels: set[ReportKernel] = set()


def close_open_kernels() -> None:
    """Close every report kernel of this process that is still open."""
    for kernel in list(_open_kernels):
        kernel.close()


class ReportKernel:
    """A kernel of the running interpreter, started on construction.

    It talks over IPC sockets in a folder only this user can open; TCP on
    loopback would let any local user connect to the kernel while it runs.
    ``env`` is its whole environment (see :func:`kernel_environment`) and
    ``cwd`` its working folder. :meth:`close` stops it and removes the folder.
    """

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self._sockets = Path(tempfile.mkdtemp(prefix="twinme-kernel-"))
        _open_kernels.add(self)
        self.manager = KernelManager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=InterpreterKernelSpecs(),
            client_factory=ReadyCheckClient,
            transport="ipc",
            ip=str(self._sockets / "kernel"),
            connection_file=str(self._sockets / "connection.json"),
        )
        try:
            self.manager.start_kernel(env=env, cwd=str(cwd))
        except BaseException:
            self.close()
            raise

    def is_alive(self) -> bool:
        return self.manager.has_kernel and self.manager.is_alive()

    def change_folder(self, folder: Path) -> None:
        """Make ``folder`` the kernel's working folder, waiting until it has started.

        For a kernel started before its report was known. The code runs silently:
        it takes no execution count and leaves nothing in the notebook.
        """
        client = self.manager.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=KERNEL_START_TIMEOUT)
            request = client.execute(
                f"__import__('os').chdir({str(folder)!r})",
                silent=True,
                store_history=False,
            )
            deadline = time.monotonic() + KERNEL_START_TIMEOUT
            while True:
                reply = client.get_shell_msg(
                    timeout=max(0, deadline - time.monotonic())
                )
                if reply["parent_header"].get("msg_id") == request:
                    break
            if reply["content"].get("status") != "ok":
                raise RuntimeError(
                    f"The kernel could not change to {folder}: "
                    f"{reply['content'].get('evalue', 'no reason given')}"
                )
        except Empty:
            raise TimeoutError(
                f"The kernel did not reply in {KERNEL_START_TIMEOUT} s."
            ) from None
        finally:
            client.stop_channels()

    def close(self) -> None:
        """Stop the kernel and remove its socket folder; calling it again is safe.

        A close cut short before the kernel stopped leaves the kernel in
        :func:`close_open_kernels`'s set, to be stopped there.
        """
        try:
            if self.manager.has_kernel:
                self.manager.shutdown_kernel(now=True)
            _open_kernels.discard(self)
        finally:
            shutil.rmtree(self._sockets, ignore_errors=True)


def run_papermill(
    kernel: ReportKernel, notebook: Path, output: Path, parameters: dict, cwd: Path
) -> None:
    """Execute ``notebook`` into ``output`` in ``kernel``, then close the kernel.

    The output notebook is written at the start, at the end and at most every 30
    seconds in between (see :mod:`twinme_lab.reports.engine`).
    """
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            engine_name=ENGINE_NAME,
            kernel_name=KERNEL_NAME,
            km=kernel.manager,
            progress_bar=False,
            log_output=False,
            start_timeout=KERNEL_START_TIMEOUT,
            cwd=str(cwd),
        )
    finally:
        kernel.close()


def _execute_notebook(
    ws: Workspace,
    output: Path,
    parameters: dict,
    folder: Path,
    notebook=None,
    kernel: ReportKernel | None = None,
) -> None:
    """Run papermill in ``kernel``, or in a new one, with the key in its environment.

    A given kernel may have been started in another folder; it is moved to
    ``folder`` first. The kernel is closed in every case.
    """
    try:
        if kernel is None:
            kernel = ReportKernel(kernel_environment(ws), folder)
        else:
            try:
                kernel.change_folder(folder)
            except BaseException:
                kernel.close()
                raise
        run_papermill(
            kernel, Path(notebook or notebook_path()), output, parameters, folder
        )
    except papermill.PapermillExecutionError as exc:
        _keep_failure(
            folder,
            output,
            f"The report notebook for {parameters['participant']} failed in cell "
            f"{exc.exec_count}: {exc.ename}: {exc.evalue}.",
        )
    except (RuntimeError, OSError, TimeoutError) as exc:
        # A kernel that dies or does not start raises these from jupyter_client.
        _keep_failure(
            folder,
            output,
            f"The report kernel for {parameters['participant']} failed: "
            f"{type(exc).__name__}: {exc}.",
        )


def _keep_failure(folder: Path, output: Path, message: str) -> None:
    """Keep the partial notebook and the error beside it, then raise ReportError."""
    failed = folder / FAILED_NAME
    if output.exists():
        output.replace(failed)
        message += f" The partial notebook is {failed}."
    message = redact(message)
    (folder / ERROR_NAME).write_text(message + "\n", encoding="utf-8")
    log.warning("%s", message)
    raise ReportError(message) from None


def scores_document(report: ReportData, parameters: dict, seconds: float) -> dict:
    """Return the content of ``trait_scores.json`` for a finished report."""
    return {
        "participant_id": report.participant_id,
        "generated_at": datetime.now(UTC).isoformat(),
        "package_version": package_version(),
        "python": sys.version.split()[0],
        "mapping_version": report.mapping_version,
        "reference": report.reference,
        "data_fingerprint": report.fingerprint,
        "parameters": parameters,
        "notebook_seconds": round(seconds, 3),
        "traits": report.scores(),
    }


def _write_json(path: Path, document: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(
        json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    temporary.replace(path)
