"""Trait reports on a Dask cluster: a real LocalCluster on 127.0.0.1.

The cluster has two worker processes with one thread each, started with only the
derived database key in their environment. The master key sits in a key file
named by TWINME_KEY_FILE in the client process only. One batch runs the real
report notebook with a planted failure for P03; later tests read what it wrote,
check resumption through the CLI, and look for the keys in what the scheduler
stored.
"""

from __future__ import annotations

import json
import os
import socket
import sys

import cloudpickle
import nbformat
import pytest
from conftest import REAL

from twinme_lab import keys, participants, traits
from twinme_lab.cli import common, main
from twinme_lab.errors import UsageError
from twinme_lab.imports import import_path
from twinme_lab.reports import cluster as cluster_module
from twinme_lab.reports import runner as runner_module
from twinme_lab.reports.batch import run_reports
from twinme_lab.workspace import init_workspace

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

KEY_VARIABLES = (keys.KEY_ENV, keys.KEY_FILE_ENV, keys.DATABASE_KEY_ENV)


class TaskRecorder(distributed.diagnostics.plugin.SchedulerPlugin):
    """Keep the pickled specification of every task the scheduler receives."""

    def __init__(self, scheduler):
        self.scheduler = scheduler
        self.specs: dict[str, bytes] = {}

    def transition(self, key, start, finish, *args, stimulus_id=None, **kwargs):
        task = self.scheduler.tasks.get(key)
        if task is not None and key not in self.specs:
            self.specs[str(key)] = cloudpickle.dumps(task.run_spec)


def planted_notebook(path) -> str:
    """Write the report notebook with a cell that fails for P03 only."""
    notebook = nbformat.read(runner_module.notebook_path(), as_version=4)
    failing = nbformat.v4.new_code_cell(
        'if participant == "P03":\n    raise RuntimeError("planted failure")'
    )
    notebook.cells.insert(2, failing)
    nbformat.write(notebook, path)
    return str(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Build a three-participant workspace and start the cluster.

    P01 has the real Spotify and Netflix samples; P02 and P03 have no data.
    """
    base = tmp_path_factory.mktemp("dask")
    key_hex = keys.generate_key()
    key_file = base / "master.key"
    keys.write_key_file(key_file, key_hex)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(keys.CONFIG_DIR_ENV, str(base / "config"))
        for name in KEY_VARIABLES:
            patch.delenv(name, raising=False)
        patch.setenv(keys.KEY_FILE_ENV, str(key_file))
        ws, _ = init_workspace(base / "ws")
        for participant_id in ("P01", "P02", "P03"):
            participants.add(ws, participant_id, "Europe/Berlin", "v1")
        import_path(ws, "spotify", REAL / "spotify_extended" / "a", "P01")
        import_path(
            ws,
            "netflix",
            REAL / "netflix_viewing_activity" / "a" / "ViewingActivity.csv",
            "P01",
        )
        traits.score(ws)
        database_key = ws.key.database_key()

    with pytest.MonkeyPatch.context() as patch:
        # Worker processes inherit this process's environment when spawned, so
        # no key variable may be set while the cluster starts.
        for name in KEY_VARIABLES:
            patch.delenv(name, raising=False)
        local = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            env={keys.DATABASE_KEY_ENV: database_key},
        )
    recorder = TaskRecorder(local.scheduler)
    local.scheduler.add_plugin(recorder, name="task-recorder")
    try:
        yield {
            "base": base,
            "ws": ws,
            "key_hex": key_hex,
            "key_file": key_file,
            "database_key": database_key,
            "cluster": local,
            "recorder": recorder,
        }
    finally:
        local.close()


@pytest.fixture
def client_key(setup, monkeypatch):
    """Give the client process the master key through the key file."""
    monkeypatch.setenv(keys.KEY_FILE_ENV, str(setup["key_file"]))
    monkeypatch.delenv(keys.DATABASE_KEY_ENV, raising=False)


@pytest.fixture(scope="module")
def first_batch(setup):
    """Run all three reports on the cluster with the planted failure."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(keys.KEY_FILE_ENV, str(setup["key_file"]))
        patch.delenv(keys.DATABASE_KEY_ENV, raising=False)
        seen = []
        result = run_reports(
            setup["ws"].root,
            scheduler=setup["cluster"].scheduler_address,
            notebook=planted_notebook(setup["base"] / "planted.ipynb"),
            progress=seen.append,
        )
    return {"result": result, "progress": seen}


def test_cluster_batch_statuses(first_batch):
    result = first_batch["result"]
    assert [o.participant_id for o in result.outcomes] == ["P01", "P02", "P03"]
    status = {o.participant_id: o.status for o in result.outcomes}
    assert status == {"P01": "written", "P02": "written", "P03": "failed"}
    assert sorted(o.participant_id for o in first_batch["progress"]) == [
        "P01",
        "P02",
        "P03",
    ]


def test_cluster_writes_report_files(setup, first_batch):
    reports = setup["ws"].reports_dir
    for participant_id in ("P01", "P02"):
        names = sorted(p.name for p in (reports / participant_id).iterdir())
        assert names == [
            "trait_report.html",
            "trait_report.ipynb",
            "trait_scores.json",
        ]
        document = json.loads(
            (reports / participant_id / "trait_scores.json").read_text()
        )
        assert document["participant_id"] == participant_id
        assert document["mapping_version"] == "default-1"


def test_cluster_keeps_failure_beside_output(setup, first_batch):
    folder = setup["ws"].reports_dir / "P03"
    error = (folder / "report_error.txt").read_text()
    assert "RuntimeError: planted failure" in error
    assert (folder / "trait_report.failed.ipynb").is_file()
    assert not (folder / "trait_report.html").exists()
    failed = first_batch["result"].failed
    assert [o.participant_id for o in failed] == ["P03"]
    assert "planted failure" in failed[0].error


def test_task_arguments_hold_no_key(setup, first_batch):
    specs = setup["recorder"].specs
    report_specs = {k: v for k, v in specs.items() if k.startswith("twinme-report-")}
    assert sorted(report_specs) == [
        "twinme-report-P01",
        "twinme-report-P02",
        "twinme-report-P03",
    ]
    for key, spec in report_specs.items():
        # The recorder did capture the arguments: the participant id is there.
        assert key.removeprefix("twinme-report-").encode() in spec
        for secret in (setup["key_hex"], setup["database_key"]):
            assert secret.encode() not in spec, key
            assert bytes.fromhex(secret) not in spec, key


def test_workers_hold_only_database_key(setup):
    with distributed.Client(setup["cluster"]) as client:
        environments = client.run(lambda: dict(os.environ))
    assert len(environments) == 2
    for address, environment in environments.items():
        assert environment.get(keys.DATABASE_KEY_ENV) == setup["database_key"]
        assert not environment.get(keys.KEY_ENV), address
        assert not environment.get(keys.KEY_FILE_ENV), address
        for name, value in environment.items():
            assert setup["key_hex"] not in value.lower(), name


def test_reports_hold_no_key(setup, first_batch):
    files = [p for p in setup["ws"].reports_dir.rglob("*") if p.is_file()]
    assert len(files) == 8  # three files each for P01 and P02, two for P03
    for path in files:
        text = path.read_text(errors="replace").lower()
        assert setup["key_hex"] not in text, path
        assert setup["database_key"] not in text, path


def test_cluster_binds_only_loopback(setup):
    me = psutil.Process()
    listening = []
    for process in [me, *me.children(recursive=True)]:
        for connection in process.net_connections(kind="inet"):
            if connection.status == psutil.CONN_LISTEN:
                listening.append(connection.laddr.ip)
    assert listening  # the scheduler, nannies and workers listen
    assert set(listening) == {"127.0.0.1"}


def test_cli_cluster_run_resumes(setup, first_batch, client_key, capsys):
    reports = setup["ws"].reports_dir
    before = {
        p: (reports / p / "trait_report.html").stat().st_mtime_ns
        for p in ("P01", "P02")
    }
    common._state.update({"json": False, "exit_code": 0})
    code = main(
        [
            "report",
            "--all",
            "--scheduler",
            setup["cluster"].scheduler_address,
            "--workspace",
            str(setup["ws"].root),
            "--json",
        ]
    )
    common._state.update({"json": False, "exit_code": 0})
    output = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (output["written"], output["skipped"], output["failed"]) == (1, 2, 0)
    status = {r["participant"]: r["status"] for r in output["reports"]}
    assert status == {"P01": "skipped", "P02": "skipped", "P03": "written"}
    for participant_id, mtime in before.items():
        html = reports / participant_id / "trait_report.html"
        assert html.stat().st_mtime_ns == mtime
    assert not (reports / "P03" / "report_error.txt").exists()
    assert not (reports / "P03" / "trait_report.failed.ipynb").exists()
    assert (reports / "P03" / "trait_report.html").is_file()


def test_workers_with_other_key_are_rejected(setup, tmp_path, monkeypatch):
    monkeypatch.setenv(keys.KEY_ENV, keys.generate_key())
    monkeypatch.delenv(keys.KEY_FILE_ENV, raising=False)
    other, _ = init_workspace(tmp_path / "other")
    participants.add(other, "Q01")
    with pytest.raises(cluster_module.WorkerKeyError, match="another workspace"):
        run_reports(other, scheduler=setup["cluster"].scheduler_address)
    assert not (other.reports_dir / "Q01").exists()


@pytest.mark.parametrize(
    "address",
    [
        "tcp://10.1.2.3:8786",
        "192.168.1.5:8786",
        "tcp://scheduler.example.org:8786",
        "tcp://0.0.0.0:8786",
        "TCP://[2001:db8::1]:8786",
    ],
)
def test_plain_tcp_off_loopback_rejected(workspace, monkeypatch, address):
    participants.add(workspace, "P01")
    attempts = []

    def record_connect(self, target):
        attempts.append(target)
        raise AssertionError(f"connected to {target}")

    monkeypatch.setattr(socket.socket, "connect", record_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", record_connect)
    monkeypatch.setattr(distributed, "Client", record_connect)
    with pytest.raises(UsageError, match="not on loopback, so it must use tls://"):
        run_reports(workspace, scheduler=address)
    assert attempts == []


@pytest.mark.parametrize(
    ("address", "normalized"),
    [
        ("tcp://127.0.0.1:8786", "tcp://127.0.0.1:8786"),
        ("127.0.0.2:9000", "tcp://127.0.0.2:9000"),
        ("localhost:8786", "tcp://localhost:8786"),
        ("tcp://[::1]:8786", "tcp://[::1]:8786"),
        ("tls://10.1.2.3:8786", "tls://10.1.2.3:8786"),
        ("tls://scheduler.example.org", "tls://scheduler.example.org:8786"),
    ],
)
def test_scheduler_address_accepted(address, normalized):
    assert cluster_module.check_scheduler_address(address) == normalized


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("ucx://127.0.0.1:8786", "uses ucx://"),
        ("tls://", "is not HOST:PORT"),
        ("tls://host:port", "is not HOST:PORT"),
        ("tls://host:8786/path", "is not HOST:PORT"),
    ],
)
def test_scheduler_address_malformed(address, message):
    with pytest.raises(UsageError, match=message):
        cluster_module.check_scheduler_address(address)


def test_cli_rejects_plain_tcp_off_loopback(workspace, capsys):
    common._state.update({"json": False, "exit_code": 0})
    code = main(
        [
            "report",
            "--all",
            "--scheduler",
            "tcp://10.1.2.3:8786",
            "--workspace",
            str(workspace.root),
        ]
    )
    assert code == 2
    assert "must use tls://" in capsys.readouterr().err


def test_scheduler_with_jobs_rejected(workspace):
    with pytest.raises(UsageError, match="--jobs applies to local runs only"):
        run_reports(workspace, scheduler="tcp://127.0.0.1:8786", jobs=2)


def test_missing_distributed_names_extra(workspace, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(UsageError, match=r"pip install 'twinme-lab\[dask\]'"):
        run_reports(workspace, scheduler="tcp://127.0.0.1:8786")


def test_worker_check_rejects_master_key(monkeypatch):
    monkeypatch.setenv(keys.DATABASE_KEY_ENV, "ab" * 32)
    monkeypatch.setenv(keys.KEY_ENV, keys.generate_key())
    with pytest.raises(cluster_module.WorkerKeyError, match="only TWINME_DATABASE"):
        cluster_module.check_worker_environment()


def test_worker_check_needs_database_key(monkeypatch):
    monkeypatch.delenv(keys.DATABASE_KEY_ENV, raising=False)
    with pytest.raises(cluster_module.WorkerKeyError, match="has no TWINME_DATABASE"):
        cluster_module.check_worker_environment()
