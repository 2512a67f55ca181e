"""Extraction killed with SIGKILL at random points resumes without loss or doubles.

A reference workspace gets one clean run. A second workspace, connected to the
same sandbox users, has twenty runs killed at random moments; after each kill its
database must open, and after one more complete run it must hold exactly the
reference's rows. Pacing sleeps are skipped in the child process (its clock never
waits), so each run lasts seconds, and the child re-reads every list
(``refresh``), so each run has work to be killed in; requests and writes are
real.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import requests

from twinme_lab import oauth, participants, sandbox
from twinme_lab.workspace import init_workspace, open_workspace

KILLS = 20
PLATFORMS = ("github", "discord", "reddit")

CHILD = """
import sys
from twinme_lab.extract.limits import Clock
from twinme_lab.extract.run import run_extraction
from twinme_lab.workspace import open_workspace


class NoWait(Clock):
    def sleep(self, seconds):
        return None


result = run_extraction(open_workspace(sys.argv[1]), clock=NoWait(), refresh=True)
sys.exit(result.exit_code)
"""

# Tables compared between the two workspaces, with the columns that identify a
# row and the ones that must match.
TABLES = {
    "api_records": "participant_id, platform, endpoint, item_id, payload",
    "code_repositories": "participant_id, repo_id, full_name, owned, fork",
    "code_languages": "participant_id, repo_id, language, bytes",
    "code_activity": "participant_id, event_id, kind, occurred_at",
    "communities": "participant_id, platform, community_id, name, owned",
    "community_posts": "participant_id, post_id, kind, created_at",
}


@pytest.fixture(scope="module")
def sb():
    handle = sandbox.serve(auto_consent=True, seed=0, rate_limits=False)
    yield handle
    handle.stop()


def connect_all(workspace, sb) -> None:
    participants.add(workspace, "p0")
    for platform in PLATFORMS:
        pending = oauth.begin(workspace, platform, "p0")
        response = requests.get(
            pending.url + "&sandbox_user=0",
            verify=sb.ca_path,
            allow_redirects=False,
            timeout=10,
        )
        oauth.complete(workspace, pending, response.headers["Location"])


def rows_of(workspace) -> dict[str, list[tuple]]:
    with workspace.connect() as con:
        return {
            table: con.execute(f"SELECT {columns} FROM {table} ORDER BY ALL").fetchall()
            for table, columns in TABLES.items()
        }


def child(path, env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_kill_at_random_points(sb, tmp_path, monkeypatch):
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    env = dict(os.environ)

    reference, _ = init_workspace(tmp_path / "reference")
    connect_all(reference, sb)
    started = time.monotonic()
    done = child(reference.root, env)
    _, stderr = done.communicate(timeout=300)
    clean_seconds = time.monotonic() - started
    assert done.returncode == 0, stderr.decode()[-2000:]
    expected = rows_of(reference)
    assert len(expected["code_activity"]) == 45
    assert len(expected["communities"]) == 12 + 18

    victim, _ = init_workspace(tmp_path / "victim")
    connect_all(victim, sb)
    rng = random.Random(20261204)
    finished_early = 0
    # Later runs have less to do (cursors, 304s), so kill times are drawn from
    # the duration of the latest run that finished on its own.
    horizon = clean_seconds
    for _ in range(KILLS):
        launched = time.monotonic()
        process = child(victim.root, env)
        time.sleep(rng.uniform(0.0, horizon))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        else:
            finished_early += 1
            horizon = max(0.5, 0.8 * (time.monotonic() - launched))
        process.wait(timeout=60)
        # The database opens and answers after every kill.
        opened = open_workspace(victim.root)
        with opened.connect() as con:
            con.execute("SELECT count(*) FROM api_records").fetchone()

    final = child(victim.root, env)
    _, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr.decode()[-2000:]
    got = rows_of(open_workspace(victim.root))
    for table in TABLES:
        assert got[table] == expected[table], table
    # Most runs were cut short; a run that finished first proves nothing.
    assert finished_early < KILLS // 2
