"""Thread caps for parallel report workers and for DuckDB connections."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from twinme_lab import store
from twinme_lab.errors import StoreError
from twinme_lab.reports import batch


def test_duckdb_threads_from_environment(monkeypatch):
    monkeypatch.setenv(store.THREADS_ENV, "1")
    con = store.new_connection()
    try:
        threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    finally:
        con.close()
    assert int(threads) == 1


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_duckdb_threads_invalid_value(monkeypatch, value):
    monkeypatch.setenv(store.THREADS_ENV, value)
    with pytest.raises(StoreError) as caught:
        store.new_connection()
    assert store.THREADS_ENV in str(caught.value)
    assert repr(value) in str(caught.value)


def test_cap_set_inside_block_only(monkeypatch):
    for name in batch.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with batch.threads_per_worker(1):
        inside = {name: os.environ.get(name) for name in batch.THREAD_VARIABLES}
    after = {name: os.environ.get(name) for name in batch.THREAD_VARIABLES}
    assert inside == {name: "1" for name in batch.THREAD_VARIABLES}
    assert after == {name: None for name in batch.THREAD_VARIABLES}


def test_cap_keeps_user_setting(monkeypatch):
    for name in batch.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    with batch.threads_per_worker(1):
        assert os.environ["OMP_NUM_THREADS"] == "4"
        assert os.environ[store.THREADS_ENV] == "1"
    assert os.environ["OMP_NUM_THREADS"] == "4"
    assert store.THREADS_ENV not in os.environ


def _read_threads_variable(queue) -> None:
    queue.put(os.environ.get(store.THREADS_ENV))


def test_spawned_worker_inherits_cap(monkeypatch):
    monkeypatch.delenv(store.THREADS_ENV, raising=False)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with batch.threads_per_worker(1):
        child = context.Process(target=_read_threads_variable, args=(queue,))
        child.start()
    seen = queue.get(timeout=60)
    child.join(timeout=60)
    assert seen == "1"
