"""fit_many when a run cannot finish: nothing finished is lost.

A lost Dask worker with allowed-failures 0, a ``timeout=`` (on a cluster scaled to zero, on a
busy cluster, on a process pool) and an interrupt each stop the run:
the pending chunks are cancelled (no task is left on the scheduler, the pool's processes are
terminated), the finished series come back equal to an uninterrupted run, the others are
recorded as "not run: <cause>".  Within allowed-failures a lost worker costs only the
retried chunks.  Clusters listen on loopback only; every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pandas as pd
import pytest

import pymc_dlm as dlm
from pymc_dlm.workflow import many

from dask import distributed  # a test dependency (pyproject's test extra)


@pytest.fixture(scope="module")
def panel():
    """40 local levels of 400 steps (tens of ms per fit: a run lasts long enough to stop)."""
    rng = np.random.default_rng(5)
    Y = np.cumsum(rng.normal(0.0, 0.5, (40, 400)), axis=1) + rng.normal(0.0, 1.0, (40, 400))
    return pd.DataFrame(Y.T, columns=[f"s{i:02d}" for i in range(40)])


@pytest.fixture(scope="module")
def reference(panel):
    return dlm.fit_many("level", panel, progress=False).table


def _scheduler_tasks(client) -> int:
    """Tasks the scheduler still knows, after at most 10 s for cancellations to land."""
    deadline = time.monotonic() + 10.0
    while True:
        n = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
        if n == 0 or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def _check_partial(res, reference, cause):
    """Finished rows equal the uninterrupted run's; the rest are 'not run: <cause>'."""
    err = res.table["error"]
    not_run = err.str.startswith("not run: ")
    assert not res.complete and cause in res.cause
    assert (err[not_run] == f"not run: {res.cause}").all()
    assert np.isnan(res.table.loc[not_run, "log_likelihood"]).all()
    done = res.table.index[~not_run]
    pd.testing.assert_frame_equal(res.table.loc[done], reference.loc[done])
    assert set(res.models) == set(done)
    return len(done)


@pytest.fixture(scope="class")
def processes():
    """Two worker processes (one thread each) on loopback, allowed-failures 0 (class-scoped:
    closed before the other tests start clusters of their own, which would find its HTTP
    port taken)."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def _warm(client):
    """Import and compile on each worker, so that a run's chunks take tens of ms."""
    client.wait_for_workers(2, timeout=60)
    pids = client.run(os.getpid)
    client.gather([client.submit(
        lambda: dlm.fit_many("level", np.arange(5.0)[None] ** 2, progress=False).cause,
        workers=[w], pure=False) for w in pids])
    return pids


def _kill_after_three(client, pids, monkeypatch):
    """After 3 series are back, SIGKILL a worker that is running a chunk."""
    killed = []
    update = many._Progress.update

    def update_and_kill(self, k):
        update(self, k)
        if self.done >= 3 and not killed:
            busy = [w for w, keys in client.processing().items() if keys]
            killed.append(busy[0])
            os.kill(pids[busy[0]], signal.SIGKILL)

    monkeypatch.setattr(many._Progress, "update", update_and_kill)
    return killed


class TestLostWorker:
    """A worker process SIGKILLed mid-run."""

    def test_killed_worker_returns_the_finished_series(self, processes, panel, reference,
                                                       monkeypatch):
        """With allowed-failures 0 the chunk of the killed worker is not retried: the run stops
        and cancels the rest."""
        client = processes
        killed = _kill_after_three(client, _warm(client), monkeypatch)
        with pytest.warns(RuntimeWarning, match="fit_many stopped early"):
            res = dlm.fit_many("level", panel, client=client, chunk_size=1, timeout=120,
                               progress=False)
        assert killed
        # KilledWorker, or (usually: a task runs where its data are) the chunk's scattered
        # data lost with the worker, so the scheduler forgets the task
        assert res.cause.startswith(("KilledWorker", "chunk cancelled by the cluster (a worker "
                                     "holding its data died"))
        n_done = _check_partial(res, reference, "")
        assert 3 <= n_done < 40
        assert _scheduler_tasks(client) == 0

    def test_killed_worker_costs_only_a_retry_within_allowed_failures(self, processes, panel,
                                                                      reference, monkeypatch):
        """With allowed-failures 3 the chunks whose data died with the worker are scattered and
        run again: the run completes with the uninterrupted run's table."""
        client = processes
        client.run_on_scheduler(
            lambda dask_scheduler: setattr(dask_scheduler, "allowed_failures", 3))
        killed = _kill_after_three(client, _warm(client), monkeypatch)
        res = dlm.fit_many("level", panel, client=client, chunk_size=1, timeout=120,
                           progress=False)
        assert killed and res.complete, res.cause
        pd.testing.assert_frame_equal(res.table, reference)
        assert _scheduler_tasks(client) == 0


def test_timeout_on_a_cluster_scaled_to_zero(panel):
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        cluster.scale(0)
        deadline = time.monotonic() + 10.0
        while client.nthreads() and time.monotonic() < deadline:
            time.sleep(0.05)
        t0 = time.monotonic()
        with pytest.warns(RuntimeWarning, match="40 of 40 series not run"):
            res = dlm.fit_many("level", panel, client=client, timeout=1.5, progress=False)
        assert time.monotonic() - t0 < 1.5 + 3.0
        assert res.cause == "timeout after 1.5 s (no Dask worker)"
        assert (res.table["error"] == "not run: timeout after 1.5 s (no Dask worker)").all()
        assert not res.models
        assert _scheduler_tasks(client) == 0


def test_timeout_on_a_busy_cluster_cancels_the_running_chunks(panel, reference):
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        # 1,000 series: several seconds of fits on a fast idle machine (200 took under 1 s)
        big = pd.concat([panel] * 25, axis=1, keys=range(25))
        big.columns = [f"{a}-{b}" for a, b in big.columns]
        ref = pd.concat([reference.rename(index=lambda s, a=a: f"{a}-{s}") for a in range(25)])
        t0 = time.monotonic()
        with pytest.warns(RuntimeWarning, match="fit_many stopped early"):
            res = dlm.fit_many("level", big, client=client, chunk_size=4, timeout=1.0,
                               progress=False)
        assert time.monotonic() - t0 < 1.0 + 3.0
        n_done = _check_partial(res, ref, "timeout after 1.0 s")
        assert n_done < 1000
        assert _scheduler_tasks(client) == 0


def test_timeout_terminates_the_process_pool(panel):
    t0 = time.monotonic()
    with pytest.warns(RuntimeWarning, match="fit_many stopped early"):
        res = dlm.fit_many("level", panel, n_jobs=2, chunk_size=1, timeout=2.0, progress=False)
    assert time.monotonic() - t0 < 2.0 + 5.0
    assert res.cause == "timeout after 2.0 s"
    assert res.table["error"].str.startswith("not run").sum() >= 1


def test_interrupt_keeps_the_finished_chunks(panel, reference, monkeypatch):
    """A KeyboardInterrupt during the third chunk (in this process) is re-raised with the two
    finished chunks attached as ``partial``."""
    fit_chunk = many._fit_chunk
    calls = []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fit_chunk(*args)

    monkeypatch.setattr(many, "_fit_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt) as info:
        dlm.fit_many("level", panel.iloc[:, :10], chunk_size=3, progress=False)
    partial = info.value.partial
    assert _check_partial(partial, reference, "KeyboardInterrupt") == 6
    assert partial.table["error"].iloc[6:].eq("not run: KeyboardInterrupt").all()


def test_progress_bar_on_a_terminal_and_lines_otherwise():
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty, log = Terminal(), io.StringIO()
    for stream in (tty, log):
        bar = many._Progress(10, True, stream)
        bar.t0 -= 2.0  # 2 s elapsed before the first update
        bar.update(4)
        bar.update(6)
        bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("fit_many: 4/10 series, 2.0/s, 0:03 left")
    assert tty.getvalue().startswith("\rfit_many |############..................| 4/10 series")
    assert tty.getvalue().endswith("10/10 series, 5.0/s, 0:00 left\n")
    quiet = io.StringIO()
    bar = many._Progress(10, False, quiet)
    bar.update(10)
    bar.close()
    assert quiet.getvalue() == ""
