"""Running episodes in parallel: one interface, three engines.

An :class:`EpisodeTask` holds everything one episode needs (the agent's :class:`~.roster.AgentSpec`,
its fitted network and the data's support as objects, the seeds), and :func:`run_episode` plays it
and returns the record; it depends on nothing but the task, so every engine produces the same
records for the same tasks.

* ``"serial"``: in this process, one episode after another (tests, debugging).
* ``"local"`` (default): worker processes on this machine (all cores unless ``workers`` says
  otherwise), started with ``spawn``.  At most one episode per worker is in flight, so when a
  worker dies (killed, out of memory, a crash in native code) only the episodes in flight are
  lost: each is replayed alone in a fresh process (which tells the episode that kills its worker
  from its innocent siblings), up to ``1 + retries`` times, and reported as failed if it dies
  every time; the other episodes' records are kept.
* ``"dask"``: a Dask ``distributed`` cluster: ``address="tcp://host:8786"`` for a running
  scheduler (its workers need this package installed), or ``"local"`` for a ``LocalCluster`` of
  ``workers`` processes on this machine.  Dask, not Ray: its wheels are pure Python and small, its
  ``LocalCluster`` runs inside the test suite in seconds, and it talks to a plain scheduler
  address; Ray ships a large native runtime per platform.  A task whose worker dies is rescheduled
  by the scheduler (``distributed.scheduler.allowed-failures``, set to ``retries`` for a local
  cluster) and reported as failed after that.

An exception raised by an episode itself is not retried (it would fail again): it is reported
with its traceback and the other episodes go on.  Every engine calls ``done(i, record)`` as each
episode finishes, so results are saved as they come.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import re
import sys
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

EXECUTORS = ("local", "serial", "dask")
Done = Callable[[int, dict], None]


@dataclass
class EpisodeTask:
    """One episode: agent, seeds, length and the objects the agent needs."""

    spec: Any                      # AgentSpec
    env_name: str
    seed: int
    run: int
    days: int
    env_kwargs: dict = field(default_factory=dict)
    network: Any = None            # the fitted network of a learned model
    support: Any = None            # the training data's support (guards)
    top: int = 5
    keep_states: bool = False
    extra: dict = field(default_factory=dict)  # merged into the record (settings key, ...)


def _single_thread() -> None:
    """One thread per worker: episodes are the unit of parallelism.  Torch is only touched when
    something already imported it (a task with a network), so agents without one start fast."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def run_episode(task: EpisodeTask) -> dict:
    """Play ``task`` and return its JSON-ready record (see :func:`.episodes.play_episode`)."""
    from ..envs.registry import make_env
    from .episodes import agent_seed, play_episode
    from .roster import build_agent
    _single_thread()
    env = make_env(task.env_name, **(task.env_kwargs or {}))
    agent = build_agent(task.spec, env, task.network, task.support, seed=task.seed)
    rec = play_episode(env, agent, task.seed, task.days, agent_seed=agent_seed(task.seed, task.run), top=task.top,
                       keep_states=task.keep_states)
    rec.update({"agent": task.spec.label, "fit_seed": task.spec.fit_seed, "model": task.spec.model,
                "kind": task.spec.kind, "run": task.run, "days_budget": task.days, "env": task.env_name,
                **task.extra})
    return rec


def _failure(e: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(e), e)).strip() + "\n" + "".join(
        traceback.format_tb(e.__traceback__)[-3:])


class SerialExecutor:
    """Episodes one after another in this process."""

    name = "serial"
    workers = 1

    def run(self, tasks: Sequence[EpisodeTask], done: Done) -> dict[int, str]:
        failures = {}
        for i, t in enumerate(tasks):
            try:
                rec = run_episode(t)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as e:  # noqa: BLE001 - reported, the other episodes go on
                failures[i] = _failure(e)
                continue
            done(i, rec)
        return failures

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return "serial (this process)"


class LocalExecutor:
    """Worker processes on this machine (see the module docstring)."""

    name = "local"

    def __init__(self, workers: int | None = None, retries: int = 1):
        n = (os.cpu_count() or 1) if workers is None else workers
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
        self.workers = n
        self.retries = retries
        self._ctx = mp.get_context("spawn")

    def _pool(self, n: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(n, mp_context=self._ctx, initializer=_single_thread)

    def run(self, tasks: Sequence[EpisodeTask], done: Done) -> dict[int, str]:
        failures: dict[int, str] = {}
        todo = deque(range(len(tasks)))
        deaths: dict[int, int] = {}  # deaths while playing alone
        suspects: deque = deque()
        pool = self._pool(min(self.workers, max(len(tasks), 1)))
        inflight: dict[Any, int] = {}
        try:
            while todo or inflight or suspects:
                while suspects and not inflight:  # replay episodes lost with a dead worker, each alone
                    i = suspects.popleft()
                    solo = self._pool(1)
                    try:
                        rec = solo.submit(run_episode, tasks[i]).result()
                        done(i, rec)
                    except BrokenProcessPool:
                        deaths[i] = deaths.get(i, 0) + 1
                        if deaths[i] > self.retries:  # died alone 1 + retries times
                            failures[i] = (f"the worker process died {deaths[i]} times playing this episode (if every "
                                           "episode fails so, check that the script starting the local executor "
                                           "keeps its code under `if __name__ == '__main__':`)")
                        else:
                            suspects.append(i)
                    except Exception as e:  # noqa: BLE001
                        failures[i] = _failure(e)
                    finally:
                        solo.shutdown(wait=True, cancel_futures=True)
                while todo and len(inflight) < self.workers:
                    i = todo.popleft()
                    inflight[pool.submit(run_episode, tasks[i])] = i
                if not inflight:
                    continue
                finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                broken = False
                for f in finished:
                    i = inflight.pop(f)
                    try:
                        rec = f.result()
                    except BrokenProcessPool:
                        broken = True
                        suspects.append(i)
                        continue
                    except Exception as e:  # noqa: BLE001
                        failures[i] = _failure(e)
                        continue
                    done(i, rec)
                if broken:  # every episode still in flight went down with the pool
                    for f, i in list(inflight.items()):
                        try:
                            done(i, f.result(timeout=0))
                        except Exception:  # noqa: BLE001
                            suspects.append(i)
                    inflight.clear()
                    pool.shutdown(wait=True, cancel_futures=True)
                    pool = self._pool(min(self.workers, max(len(todo), 1)))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return failures

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return f"local processes ({self.workers} workers)"


_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx)://[^\s/:]+(:\d+)?/?$")


class DaskExecutor:
    """Episodes as tasks on a Dask ``distributed`` cluster (see the module docstring)."""

    name = "dask"

    def __init__(self, address: str = "local", workers: int | None = None, retries: int = 1, timeout: float = 10.0):
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError as e:
            raise ImportError("executor='dask' needs the `distributed` package: pip install distributed") from e
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
        self.retries = retries
        self.address = address
        self._cluster = None
        if address == "local":
            n = workers or os.cpu_count() or 1
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"workers must be a positive integer, got {workers!r}")
            with dask.config.set({"distributed.scheduler.allowed-failures": retries}):
                self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                             dashboard_address=None, silence_logs=40)
                self.client = Client(self._cluster)
            self.workers = n
        else:
            if not isinstance(address, str) or not _ADDRESS.match(address):
                raise ValueError(f"not a Dask scheduler address: {address!r} (expected 'tcp://host:port' or "
                                 "'local' for a cluster on this machine)")
            try:
                self.client = Client(address, timeout=f"{timeout}s")
            except (OSError, TimeoutError) as e:
                raise ConnectionError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s: {e}") from None
            self.workers = max(len(self.client.scheduler_info().get("workers", {})), 1)

    def run(self, tasks: Sequence[EpisodeTask], done: Done) -> dict[int, str]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker
        failures: dict[int, str] = {}
        futures = {self.client.submit(run_episode, t, pure=False): i for i, t in enumerate(tasks)}
        try:
            for f in as_completed(list(futures)):
                i = futures[f]
                try:
                    rec = f.result()
                except KilledWorker as e:
                    failures[i] = f"the worker died playing this episode (Dask gave up: {e})"
                    continue
                except Exception as e:  # noqa: BLE001
                    failures[i] = _failure(e)
                    continue
                done(i, rec)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        return failures

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def describe(self) -> str:
        where = "a local Dask cluster" if self._cluster is not None else f"the Dask cluster at {self.address}"
        return f"{where} ({self.workers} workers)"


def make_executor(kind: str = "local", workers: int | None = None, address: str | None = None,
                  retries: int = 1) -> Any:
    """An executor by name (``"local"``, ``"serial"``, ``"dask"``); a bad name, worker count or
    unreachable cluster address is an error here, before any episode runs."""
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}; choose one of {EXECUTORS}")
    if address is not None and kind != "dask":
        raise ValueError(f"a cluster address only applies to executor='dask', not {kind!r}")
    if kind == "serial":
        return SerialExecutor()
    if kind == "local":
        return LocalExecutor(workers, retries)
    return DaskExecutor(address or "local", workers, retries)


__all__ = ["EXECUTORS", "EpisodeTask", "run_episode", "SerialExecutor", "LocalExecutor", "DaskExecutor",
           "make_executor"]
