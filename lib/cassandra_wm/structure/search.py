"""Simulated annealing over DAGs (appendix E.1 of the CASSANDRA paper).

Objective (eq. 5), maximised:  J(E) = data(E) - lam1 |E| / |V|^2 + lam2 log p(E | V, L), logged as
its three terms as they enter J: ``data``, ``sparsity`` = -lam1 |E| / |V|^2 and ``prior`` = lam2 log p,
with J = data + sparsity + prior.  |V| is the number of modelled nodes.

* ``data(E)`` comes from the scorer (``DataScorer.data_term``: held-out fit, a sum over nodes,
  cached per node and parent set, so a move refits only the nodes whose parents changed); J is
  assembled by :func:`~.objective.objective_terms`, the one function that holds the formula.
* Moves: add an edge, remove an edge, reverse an edge, each only if the graph stays acyclic.  A
  step picks a move type uniformly among the types that have at least one legal move, then a
  legal move of that type uniformly.
* Metropolis acceptance: a better graph is always accepted, a worse one with probability
  exp((J_new - J_old) / T).  Geometric cooling T_k = t0 * alpha^k (alpha = 0.99).
* Default starting temperature ``t0 = lam1 / |V|^2``, the J cost of one extra edge: at the start
  an edge that buys nothing is kept with probability 1/e, after 100 steps (T = 0.37 t0) with
  probability 0.07.  With lam2 = 100 a drop of the log-prior by 0.05 costs 5 J, 18 times t0 for
  the coffee shop's 6 nodes (acceptance about 1e-8), so the prior acts as the steep constraint
  the paper describes.  When lam1 = 0 the default is 0.05.
* The best graph seen (not only the last) is kept.  Every step is logged: step, move, accepted,
  T, J, data, sparsity, prior, n_edges of the current graph after the step, plus the proposal's J
  and the best J so far.

:func:`search` runs one annealing per initial DAG, in parallel processes (torch is
limited to one thread per worker).  Workers get the scorer by ``fork`` (inherited) or, where
there is no fork, by pickling (``spawn``); give it a shared ``cache_dir`` so workers reuse each
other's fits.  The prior stays in the parent process (one
LLM client, one cache) and answers the workers' questions through a queue.
"""
from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import queue as queue_mod
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from tqdm.auto import tqdm

from ..paper import LAMBDA1, LAMBDA2
from .dag import Parents, edges, is_acyclic, n_edges, to_networkx, validate
from .objective import objective_terms

PriorFn = Callable[[Mapping[str, Sequence[str]]], float]


# -- moves ---------------------------------------------------------------

def legal_moves(parents: Mapping[str, Sequence[str]], max_parents: int | None = None) -> dict[str, list]:
    """All acyclicity-preserving moves: {"add": [(u, v)], "remove": [(u, v)], "reverse": [(u, v)]}.

    ``(u, v)`` names the edge u -> v (added, removed, or turned into v -> u).
    """
    import networkx as nx
    nodes = list(parents)
    present = set(edges(parents))
    g = to_networkx(parents)
    adds, revs = [], []
    for v in nodes:
        if max_parents is not None and len(parents[v]) >= max_parents:
            continue
        reach = nx.descendants(g, v)  # u -> v closes a cycle iff u is reachable from v
        for u in nodes:
            if u != v and (u, v) not in present and (v, u) not in present and u not in reach:
                adds.append((u, v))
    for (u, v) in present:
        if max_parents is not None and len(parents[u]) >= max_parents:
            continue
        g.remove_edge(u, v)
        if not nx.has_path(g, u, v):  # v -> u is safe iff u no longer reaches v
            revs.append((u, v))
        g.add_edge(u, v)
    return {"add": adds, "remove": sorted(present), "reverse": sorted(revs)}


def apply_move(parents: Mapping[str, Sequence[str]], move: str, edge: tuple[str, str]) -> Parents:
    """A new graph with ``move`` ("add", "remove", "reverse") applied to edge u -> v.

    Raises ValueError when the move is impossible or would create a cycle.
    """
    u, v = edge
    if u not in parents or v not in parents or u == v:
        raise ValueError(f"bad edge {u!r} -> {v!r}")
    g = {k: list(ps) for k, ps in parents.items()}
    if move == "add":
        if u in g[v] or v in g[u]:
            raise ValueError(f"cannot add {u} -> {v}: the pair is already connected")
        g[v].append(u)
    elif move == "remove":
        if u not in g[v]:
            raise ValueError(f"cannot remove {u} -> {v}: no such edge")
        g[v].remove(u)
    elif move == "reverse":
        if u not in g[v]:
            raise ValueError(f"cannot reverse {u} -> {v}: no such edge")
        g[v].remove(u)
        g[u].append(v)
    else:
        raise ValueError(f"unknown move {move!r}; use add, remove or reverse")
    if not is_acyclic(g):
        raise ValueError(f"{move} {u} -> {v} would create a cycle")
    return g


def random_move(parents: Mapping[str, Sequence[str]], rng: random.Random,
                max_parents: int | None = None) -> tuple[str, tuple[str, str]] | None:
    """A uniformly chosen move type (among those possible), then a uniform legal move; None if stuck."""
    moves = legal_moves(parents, max_parents)
    kinds = [k for k in ("add", "remove", "reverse") if moves[k]]
    if not kinds:
        return None
    k = rng.choice(kinds)
    return k, rng.choice(moves[k])


# -- objective -------------------------------------------------------------

def _prior_value(prior: Any, parents: Parents) -> float:
    if prior is None:
        return 0.0
    if hasattr(prior, "log_prior"):
        return float(prior.log_prior(parents))
    return float(prior(parents))


def score_graph(parents: Mapping[str, Sequence[str]], scorer: Any, prior: Any = None, lam1: float = LAMBDA1,
                lam2: float = LAMBDA2) -> dict:
    """J of eq. 5 and its terms for one graph: {"J", "data", "sparsity", "prior", "log_prior", "n_edges"}.

    ``scorer`` needs ``data_term(parents)``; ``prior`` is None, a callable ``parents -> log p`` or an
    object with ``log_prior``.  The formula itself is :func:`~.objective.objective_terms`.
    """
    g = {k: list(v) for k, v in parents.items()}
    if not g:
        raise ValueError("the graph has no nodes")
    lp = _prior_value(prior, g)
    if not math.isfinite(lp):
        raise ValueError(f"log-prior is not finite ({lp}) for {g}")
    return objective_terms(float(scorer.data_term(g)), n_edges(g), len(g), lp, lam1, lam2)


def default_t0(n_nodes: int, lam1: float) -> float:
    """Starting temperature: the J cost of one edge, lam1 / |V|^2 (0.05 when lam1 is 0)."""
    return lam1 / n_nodes ** 2 if lam1 > 0 else 0.05


# -- annealing ---------------------------------------------------------------

@dataclass
class SearchResult:
    """One annealing run: start, best and final graphs with their terms, and the step log."""

    init_parents: Parents
    best_parents: Parents
    best_terms: dict
    final_parents: Parents
    final_terms: dict
    init_terms: dict
    log: list[dict] = field(default_factory=list)
    seed: int = 0
    t0: float = 0.0
    alpha: float = 0.99
    lam1: float = LAMBDA1
    lam2: float = LAMBDA2
    seconds: float = 0.0
    label: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SearchResult":
        return cls(**d)

    @property
    def accept_rate(self) -> float:
        return sum(r["accepted"] for r in self.log) / len(self.log) if self.log else float("nan")


def anneal(init_parents: Mapping[str, Sequence[str]], scorer: Any, prior_fn: Any = None, steps: int = 100,
           t0: float | None = None, alpha: float = 0.99, lam1: float = LAMBDA1, lam2: float = LAMBDA2, seed: int = 0,
           max_parents: int | None = None, log_path: str | Path | None = None, progress: bool = False,
           label: str = "") -> SearchResult:
    """Simulated annealing from ``init_parents`` for ``steps`` proposals (see module doc).

    ``prior_fn`` is None (no prior), a callable ``parents -> log p`` or an object with
    ``log_prior``.  With ``log_path`` every step is appended to a JSONL file as it happens, so an
    interrupted run keeps its log.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    g = validate(init_parents)
    if not g:
        raise ValueError("the initial graph has no nodes")
    if not is_acyclic(g):
        raise ValueError(f"the initial graph has a cycle: {g}")
    t0 = default_t0(len(g), lam1) if t0 is None else float(t0)
    if t0 <= 0:
        raise ValueError(f"t0 must be positive, got {t0}")
    rng = random.Random(seed)
    start = time.perf_counter()
    cur = score_graph(g, scorer, prior_fn, lam1, lam2)
    init_terms = dict(cur)
    best_g, best = g, dict(cur)
    log: list[dict] = []
    fh = None
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        fh = open(log_path, "w")
    try:
        bar = tqdm(range(steps), desc=label or "anneal", disable=not progress, leave=False)
        for k in bar:
            temp = t0 * alpha ** k
            mv = random_move(g, rng, max_parents)
            if mv is None:
                rec = {"step": k, "move": "none", "accepted": False, "T": temp, "J_proposed": float("nan")}
            else:
                kind, (u, v) = mv
                new_g = apply_move(g, kind, (u, v))
                new = score_graph(new_g, scorer, prior_fn, lam1, lam2)
                delta = new["J"] - cur["J"]
                ok = delta >= 0 or rng.random() < math.exp(delta / temp)
                rec = {"step": k, "move": f"{kind} {u}->{v}", "accepted": bool(ok), "T": temp,
                       "J_proposed": new["J"]}
                if ok:
                    g, cur = new_g, new
                    if cur["J"] > best["J"]:
                        best_g, best = g, dict(cur)
            rec.update({key: cur[key] for key in ("J", "data", "sparsity", "prior", "n_edges")})
            rec["best_J"] = best["J"]
            rec["seconds"] = time.perf_counter() - start
            log.append(rec)
            if fh is not None:
                fh.write(json.dumps(rec) + "\n")
                fh.flush()
            if progress:
                bar.set_postfix(J=f"{cur['J']:.3f}", best=f"{best['J']:.3f}")
    finally:
        if fh is not None:
            fh.close()
    return SearchResult(init_parents=validate(init_parents), best_parents=best_g, best_terms=best,
                        final_parents=g, final_terms=cur, init_terms=init_terms, log=log, seed=seed, t0=t0,
                        alpha=alpha, lam1=lam1, lam2=lam2, seconds=time.perf_counter() - start, label=label)


# -- a prior shared by worker processes --------------------------------------------

class RemotePrior:
    """Worker-side stand-in for a prior living in the parent process (see :class:`PriorServer`)."""

    def __init__(self, requests, replies, worker: int):
        self.requests, self.replies, self.worker = requests, replies, worker
        self._memo: dict = {}

    def log_prior(self, parents: Mapping[str, Sequence[str]]) -> float:
        key = tuple(sorted((v, tuple(sorted(ps))) for v, ps in parents.items()))
        if key not in self._memo:
            self.requests.put((self.worker, {k: list(v) for k, v in parents.items()}))
            ok, value = self.replies.get()
            if not ok:
                raise RuntimeError(f"prior failed in the parent process: {value}")
            self._memo[key] = float(value)
        return self._memo[key]

    __call__ = log_prior


class PriorServer:
    """Answers :class:`RemotePrior` requests from a thread of the parent process."""

    def __init__(self, prior: Any, manager, n_workers: int):
        self.prior = prior
        self.requests = manager.Queue()
        self.replies = [manager.Queue() for _ in range(n_workers)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def client(self, worker: int) -> RemotePrior:
        return RemotePrior(self.requests, self.replies[worker], worker)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                worker, parents = self.requests.get(timeout=0.2)
            except queue_mod.Empty:
                continue
            except (EOFError, OSError):
                return
            try:
                self.replies[worker].put((True, _prior_value(self.prior, parents)))
            except Exception as e:  # noqa: BLE001 - passed back to the worker, which raises
                self.replies[worker].put((False, f"{type(e).__name__}: {e}"))

    def __enter__(self) -> "PriorServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _worker_init() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass


# With the 'fork' start method the scorer reaches the workers through this dict (inherited memory,
# no pickling); with 'spawn' it is pickled into each job.
_INHERITED: dict = {}


def _run_one(kwargs: dict) -> SearchResult:
    _worker_init()
    if kwargs.get("scorer") is None:
        kwargs = dict(kwargs, scorer=_INHERITED["scorer"])
    return anneal(**kwargs)


# -- several runs ----------------------------------------------------------------

@dataclass
class SearchRuns:
    """The M annealing runs of :func:`search`; ``best`` is the run with the highest best J."""

    runs: list[SearchResult]

    @property
    def best_index(self) -> int:
        return max(range(len(self.runs)), key=lambda i: self.runs[i].best_terms["J"])

    @property
    def best(self) -> SearchResult:
        return self.runs[self.best_index]

    @property
    def best_parents(self) -> Parents:
        return self.best.best_parents

    def logs_frame(self):
        """All step logs in one pandas frame with a ``run`` column."""
        import pandas as pd
        return pd.DataFrame([dict(r, run=i) for i, res in enumerate(self.runs) for r in res.log])

    def to_dict(self) -> dict:
        return {"best_index": self.best_index, "runs": [r.to_dict() for r in self.runs]}


def search(init_dags: Sequence[Mapping[str, Sequence[str]]], scorer: Any, prior: Any = None, steps: int = 100,
           t0: float | None = None, alpha: float = 0.99, lam1: float = LAMBDA1, lam2: float = LAMBDA2, seed: int = 0,
           processes: int = 1, max_parents: int | None = None, log_dir: str | Path | None = None,
           progress: bool = True, label: str = "search", start_method: str | None = None) -> SearchRuns:
    """Anneal from every DAG of ``init_dags`` (run i uses seed ``seed + i``) and keep them all.

    ``processes > 1`` runs the searches in that many worker processes.  ``start_method`` defaults
    to ``fork`` where the platform has it (workers inherit the scorer, nothing is pickled) and
    ``spawn`` elsewhere (the scorer must then be picklable).  The prior is always served from this
    process.  With ``log_dir`` each run's steps go to ``log_dir/<label>_run<i>.jsonl`` as they happen.
    """
    if not init_dags:
        raise ValueError("search needs at least one initial DAG")
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    for i, g in enumerate(init_dags):
        g = validate(g)
        if not is_acyclic(g):
            raise ValueError(f"initial DAG {i} has a cycle: {g}")
    jobs = []
    for i, g in enumerate(init_dags):
        lp = Path(log_dir) / f"{label}_run{i}.jsonl" if log_dir is not None else None
        jobs.append(dict(init_parents={k: list(v) for k, v in g.items()}, scorer=scorer, steps=steps, t0=t0,
                         alpha=alpha, lam1=lam1, lam2=lam2, seed=seed + i, max_parents=max_parents,
                         log_path=lp, label=f"{label} run {i}"))
    processes = min(processes, len(jobs))
    if processes == 1:
        runs = []
        for job in tqdm(jobs, desc=label, disable=not progress):
            runs.append(anneal(prior_fn=prior, progress=progress, **job))
        return SearchRuns(runs)

    if start_method is None:
        start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(start_method)
    if start_method == "fork":
        _INHERITED["scorer"] = scorer
        for job in jobs:
            job["scorer"] = None
    try:
        return _search_pool(jobs, prior, processes, ctx, steps, label, progress)
    finally:
        _INHERITED.clear()


def _search_pool(jobs, prior, processes, ctx, steps, label, progress) -> SearchRuns:
    with ctx.Manager() as manager:
        server = PriorServer(prior, manager, len(jobs)) if prior is not None else None
        for i, job in enumerate(jobs):
            job["prior_fn"] = server.client(i) if server is not None else None
        with (server or _Null()):
            results: dict[int, SearchResult] = {}
            bar = tqdm(total=len(jobs) * steps, desc=f"{label} ({processes} processes)", disable=not progress)
            with ProcessPoolExecutor(max_workers=processes, mp_context=ctx, initializer=_worker_init) as pool:
                futures = {pool.submit(_run_one, job): i for i, job in enumerate(jobs)}
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                    for f in done:
                        results[futures[f]] = f.result()
                    bar.n = _steps_done(jobs, results, steps)
                    bar.refresh()
            bar.close()
    return SearchRuns([results[i] for i in range(len(jobs))])


def _steps_done(jobs: list[dict], results: dict, steps: int) -> int:
    total = 0
    for i, job in enumerate(jobs):
        if i in results:
            total += steps
        elif job["log_path"] is not None and Path(job["log_path"]).exists():
            with open(job["log_path"]) as f:
                total += sum(1 for _ in f)
    return total


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


__all__ = ["legal_moves", "apply_move", "random_move", "score_graph", "default_t0", "anneal", "SearchResult",
           "SearchRuns", "search", "RemotePrior", "PriorServer"]
