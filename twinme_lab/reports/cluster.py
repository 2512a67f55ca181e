"""Run trait reports on a Dask cluster through dask.distributed.

Each participant's report is one task, :func:`report_task`, which runs the same
code as a local batch (:func:`~twinme_lab.reports.batch.report_one`) on a
worker. The workers must see the workspace folder at the same path as this
process, for example on a shared file system, and must have twinme-lab installed.

How the key reaches the workers: it never travels through Dask. The script or
person that starts a worker exports ``TWINME_DATABASE_KEY`` (the derived
database key, as ``Workspace.worker_environment()`` returns it) in the worker's
environment, and the task reads it from ``os.environ``. The task arguments
contain only the workspace path, the participant id, the mapping version, the
force flag and the notebook path. The scheduler stores them and shows them on
its dashboard, and a worker logs them when a task fails. The trade-off is that the key
must be provisioned on every worker host before the batch. Workers connected at
submission are checked first, and a worker that joins later without the key
fails each report it gets. Sending the key with each task would avoid that
step, but then the scheduler would hold the key, and anyone who can read the
scheduler's memory, its dashboard or the workers' logs could see it.

Workers reject report tasks while their environment has the master key
(``TWINME_KEY`` or ``TWINME_KEY_FILE``), because the master key also opens the
token vault. NOTE: only those variables are checked. A worker on a machine whose
user config folder has the workspace's key file, as on the machine that ran
``init``, could still read the master key from that file.

A scheduler off loopback must be reached over ``tls://``. The client
certificate and CA come from the Dask configuration (``distributed.comm.tls.*``,
for example ``DASK_DISTRIBUTED__COMM__TLS__CA_FILE``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
from collections.abc import Callable
from urllib.parse import urlsplit

from .. import keys
from ..errors import UsageError, WorkspaceKeyError
from ..logs import redact
from ..workspace import Workspace
from .batch import BatchResult, ReportOutcome, crashed_outcome, report_one
from .runner import ERROR_NAME

log = logging.getLogger(__name__)

SCHEMES = ("tcp", "tls")
DEFAULT_PORT = 8786
# Seconds to wait for the connection to the scheduler.
CONNECT_TIMEOUT = 30
# Context of the key digest that workers return to show which key they hold.
_DIGEST_CONTEXT = b"twinme-lab worker database key check"


class WorkerKeyError(WorkspaceKeyError):
    """A Dask worker lacks the database key, has another one, or has the master key."""


def check_scheduler_address(address: str) -> str:
    """Return ``address`` with its scheme if it is a permitted scheduler address.

    An address without a scheme is taken as ``tcp://``, as dask.distributed does.
    Plain ``tcp://`` is accepted only for a loopback host (``localhost``,
    127.0.0.0/8 or ``::1``); any other host must use ``tls://``. Host names
    other than ``localhost`` are not resolved, so they count as off loopback.
    Nothing is contacted.
    """
    text = address.strip()
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = "tcp", text
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise UsageError(
            f"The scheduler address {address!r} uses {scheme}://; use tls://HOST:PORT "
            "(or tcp://127.0.0.1:PORT for a scheduler on this machine)."
        )
    parts = urlsplit(f"//{rest}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = parts.hostname
    if not host or port == -1 or parts.path or parts.query or parts.fragment:
        raise UsageError(
            f"The scheduler address {address!r} is not HOST:PORT; write it like "
            "tls://scheduler.example.org:8786."
        )
    if scheme == "tcp" and not _is_loopback(host):
        raise UsageError(
            f"The scheduler address {address!r} is not on loopback, so it must use "
            "tls:// to encrypt the traffic between this machine and the cluster. "
            "Start the scheduler with TLS and pass tls://HOST:PORT."
        )
    host_text = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host_text}:{port or DEFAULT_PORT}"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def key_digest(database_key_hex: str) -> str:
    """Return a short digest that distinguishes database keys without revealing one."""
    digest = hashlib.sha256(_DIGEST_CONTEXT + database_key_hex.strip().lower().encode())
    return digest.hexdigest()[:16]


def worker_key_status() -> dict:
    """Return which workspace keys this worker's environment contains.

    Runs on each worker through ``Client.run``. It returns whether a master key
    variable is set and the digest of the database key, never a key.
    """
    database_key = os.environ.get(keys.DATABASE_KEY_ENV, "")
    return {
        "master_key": any(
            os.environ.get(name) for name in (keys.KEY_ENV, keys.KEY_FILE_ENV)
        ),
        "database_key": key_digest(database_key) if database_key.strip() else None,
    }


def check_worker_environment() -> None:
    """Raise :class:`WorkerKeyError` unless this process has only the database key."""
    status = worker_key_status()
    if status["master_key"]:
        raise WorkerKeyError(
            f"This Dask worker has {keys.KEY_ENV} or {keys.KEY_FILE_ENV} set; restart "
            f"it with only {keys.DATABASE_KEY_ENV}, because the master key also "
            "opens the token vault."
        )
    if status["database_key"] is None:
        raise WorkerKeyError(
            f"This Dask worker has no {keys.DATABASE_KEY_ENV}; start it with the "
            "workspace's database key in that environment variable."
        )


def report_task(
    root: str,
    participant_id: str,
    mapping: str | None,
    force: bool,
    notebook: str | None,
) -> ReportOutcome:
    """Write one participant's report on a Dask worker (see :func:`report_one`).

    The database key comes from the worker's own ``TWINME_DATABASE_KEY``, so no
    argument of this task is secret.
    """
    check_worker_environment()
    return report_one(root, participant_id, mapping, force, notebook)


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise UsageError(
            "Running reports on a Dask cluster needs dask.distributed; install it "
            "with: pip install 'twinme-lab[dask]'"
        ) from None
    return distributed


def check_workers(client, ws: Workspace) -> None:
    """Raise :class:`WorkerKeyError` unless every worker has this workspace's key.

    Only workers connected now are checked; a worker that joins later is checked
    by each task it runs.
    """
    expected = key_digest(ws.key.database_key()) if ws.key is not None else None
    statuses = client.run(worker_key_status)
    if not statuses:
        raise WorkerKeyError(
            "The Dask cluster has no workers; start at least one worker and retry."
        )
    for address, status in sorted(statuses.items()):
        if status["master_key"]:
            raise WorkerKeyError(
                f"The Dask worker {address} has {keys.KEY_ENV} or {keys.KEY_FILE_ENV} "
                f"set; restart it with only {keys.DATABASE_KEY_ENV}, because the "
                "master key also opens the token vault."
            )
        if expected is None:
            continue
        if status["database_key"] is None:
            raise WorkerKeyError(
                f"The Dask worker {address} has no {keys.DATABASE_KEY_ENV}; start it "
                "with the workspace's database key in that environment variable."
            )
        if status["database_key"] != expected:
            raise WorkerKeyError(
                f"The Dask worker {address} has the database key of another "
                f"workspace in {keys.DATABASE_KEY_ENV}; start it with the key of "
                f"{ws.root}."
            )


def run_on_cluster(
    ws: Workspace,
    participant_ids: list[str],
    scheduler: str,
    mapping: str | None,
    force: bool,
    progress: Callable[[ReportOutcome], None] | None,
    notebook: str | None,
) -> BatchResult:
    """Run one :func:`report_task` per participant on the cluster at ``scheduler``.

    The address is checked before anything is contacted. Outcomes arrive in the
    order the tasks finish, and each is passed to ``progress``. A task that raises,
    or whose worker dies, becomes a "failed" outcome with its error written to
    ``report_error.txt``; the other tasks go on.
    """
    address = check_scheduler_address(scheduler)
    distributed = _import_distributed()
    root = str(ws.root.resolve())
    log.info("connecting to the Dask scheduler at %s", address)
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise UsageError(
            f"Could not connect to the Dask scheduler at {address}: "
            f"{type(exc).__name__}: {exc}. Check that it is running and reachable."
        ) from None
    outcomes: dict[str, ReportOutcome] = {}
    try:
        check_workers(client, ws)
        futures = {}
        for participant_id in participant_ids:
            future = client.submit(
                report_task,
                root,
                participant_id,
                mapping,
                force,
                notebook,
                key=f"twinme-report-{participant_id}",
                pure=False,
            )
            futures[future] = participant_id
        for future in distributed.as_completed(futures):
            participant_id = futures[future]
            try:
                outcome = future.result()
            except WorkerKeyError as exc:
                outcome = _failed(ws, participant_id, redact(str(exc)))
            except Exception as exc:  # a crashed task must not stop the batch
                outcome = crashed_outcome(ws, participant_id, exc)
            outcomes[participant_id] = outcome
            if progress:
                progress(outcome)
            future.release()
    finally:
        client.close()
    return BatchResult([outcomes[p] for p in participant_ids])


def _failed(ws: Workspace, participant_id: str, message: str) -> ReportOutcome:
    folder = ws.reports_dir / participant_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ERROR_NAME).write_text(message + "\n", encoding="utf-8")
    log.warning("report of %s failed: %s", participant_id, message)
    return ReportOutcome(participant_id, "failed", str(folder), error=message)
