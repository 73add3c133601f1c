"""Monte Carlo tree search over open-loop action sequences, re-planned every day.

Appendix C.4 of the paper, with the look-ahead separated from the tree:

* A tree node stands for an *action prefix*, not for a state: it represents the
  distribution of states reached by playing that prefix from the root state.
  Every simulation therefore samples the world model from the root state, through
  the prefix, to the end of the look-ahead.
* One iteration = select (UCT), expand (one untried proposed action), simulate,
  backpropagate.  The simulation is ``rollouts`` rows (default 4) pushed through
  the model together, one ``sample_next`` call per day of the look-ahead.
* The tree is at most ``tree_depth`` actions deep; the simulation then goes on to
  ``lookahead`` days with a rollout policy (the environment's heuristic agent,
  waiting, or random proposals; see :mod:`.rollouts`).  A short look-ahead sees an
  investment (an upgrade: paid at once, repaid over many days) as a pure loss; a
  long one lets it pay back, and a rollout policy that keeps the shop running (restocking,
  cleaning) keeps stock-outs from hiding the payoff.
* The value of a simulation is the predicted reward variable (money) at the end of
  the look-ahead, averaged over its rollouts; with ``discount`` < 1 each day's change
  of money is discounted (``r_0 + sum_t discount**(t-1) * (r_t - r_{t-1})``).  No
  value function is used; ``value`` may name a function of the state to use in place of
  money (the park's: money plus the resale value of its rides and shops, so a ride bought
  in the look-ahead is not counted as its whole price lost).  With ``propose_policy`` the
  rollout policy's own action is always a candidate, so the search weighs what the
  heuristic manager would do against the random proposals, and keeps it unless the
  search's choice beats it by more than one standard error of the difference of their
  means (a noisy simulator otherwise swaps a good default for a lucky draw).  Optional penalties: ``terminal_penalty`` for rollouts that
  end terminal (bankrupt), ``support_penalty`` (in units of the data's spread of daily
  money changes, ``model.support_scale``) per day on which the model had to be pulled
  back inside its training data (``model.last_out_of_support``, see
  :mod:`.support`).
* UCT works on values normalised to [0, 1] by the smallest and largest mean
  values seen so far in this tree, so the exploration constant does not depend on
  the scale of money.
* ``batch`` simulations are selected together and pushed through the model in one
  batch per day (``batch * rollouts`` rows), with a virtual loss on the paths still
  being simulated so the selections of one batch spread out.  ``batch = 1`` is the
  sequential algorithm; larger batches cut the number of model calls (the cost of a
  call to a neural network hardly depends on its rows) at the price of a search that
  adapts once per batch instead of once per iteration.
* Proposals for a node are drawn at a state its first simulation reached (the root's
  at the root state).
* The chosen action is the most visited root child (ties broken by mean value).

The paper's setting (:meth:`MCTSConfig.appendix_c4`): 90 iterations, 4 rollouts,
100 proposals, a horizon of 3 actions (tree depth = look-ahead = 3) and nothing
beyond the tree.  Each environment's kit names its own planning defaults
(:meth:`MCTSConfig.for_env`).

A model is anything with ``sample_next(states, actions, n, rng) -> (states,
valid)``, ``reward(states) -> np.ndarray`` and ``is_terminal(states) ->
np.ndarray`` (:class:`~cassandra_wm.world_model.WorldModel` and
:class:`~cassandra_wm.world_model.OracleModel` are two).  A proposer is anything
with ``propose(state, rng, n) -> list[action]`` and ``wait_action()``
(:mod:`.proposals`).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

import numpy as np

from ..envs.base import format_action
from ..paper import (MCTS_ITERATIONS, MCTS_LOOKAHEAD, MCTS_PROPOSALS, MCTS_ROLLOUT_POLICY, MCTS_ROLLOUTS,
                     MCTS_TREE_DEPTH)
from .rollouts import PolicyProposer, RolloutPolicy, check_rollout_policy, make_rollout_policy


class PlanningModel(Protocol):
    """What the planners need from a world model."""

    def sample_next(self, states: list[dict], actions: list[dict], n: int = 1,
                    rng: np.random.Generator | None = None) -> tuple[list[dict], np.ndarray]: ...

    def reward(self, states: list[dict]) -> np.ndarray: ...

    def is_terminal(self, states: list[dict]) -> np.ndarray: ...


class Proposer(Protocol):
    """What the planners need from an action-proposal heuristic."""

    def propose(self, state: dict, rng: np.random.Generator, n: int = 100) -> list[dict]: ...

    def wait_action(self) -> dict: ...


def _positive_int(owner: str, name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{owner}.{name} must be a positive integer, got {v!r}")


def config_from(cls: type, values: dict, owner: str) -> Any:
    """``cls(**values)`` with a clear error naming unknown settings."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {owner} settings {unknown}; known: {sorted(known)}")
    return cls(**values)


@dataclass
class MCTSConfig:
    """Search settings; the defaults are appendix C.4's (see the module docstring)."""

    iterations: int = MCTS_ITERATIONS
    rollouts: int = MCTS_ROLLOUTS
    n_proposals: int = MCTS_PROPOSALS
    tree_depth: int = MCTS_TREE_DEPTH  # actions chosen by the tree
    lookahead: int = MCTS_LOOKAHEAD    # days simulated from the root (tree actions, then the rollout policy)
    rollout_policy: str = MCTS_ROLLOUT_POLICY  # "wait", "random" or "heuristic" (see rollouts.py)
    discount: float = 1.0              # per-day discount of money changes (1 = money at the end)
    c_uct: float = 1.0
    batch: int = 1                     # simulations selected together and sampled in one batch
    final: str = "visits"              # pick the root child with most "visits" or best mean "value"
    terminal_penalty: float = 0.0      # subtracted from the value of rollouts that end terminal
    support_penalty: float = 0.0       # per out-of-support day, in units of model.support_scale
    value: str = ""                    # "module:function" state -> worth the planner maximises ("": money)
    propose_policy: bool = False       # also propose the rollout policy's own action (after wait)

    def validate(self) -> "MCTSConfig":
        for name in ("iterations", "rollouts", "n_proposals", "tree_depth", "lookahead", "batch"):
            _positive_int("MCTSConfig", name, getattr(self, name))
        if self.lookahead < self.tree_depth:
            raise ValueError(f"MCTSConfig.lookahead ({self.lookahead} days) must be at least tree_depth "
                             f"({self.tree_depth}): the tree's actions are part of the look-ahead")
        if not (self.c_uct >= 0):
            raise ValueError(f"MCTSConfig.c_uct must be >= 0, got {self.c_uct!r}")
        if not (0.0 < self.discount <= 1.0):
            raise ValueError(f"MCTSConfig.discount must be in (0, 1], got {self.discount!r}")
        if self.final not in ("visits", "value"):
            raise ValueError(f"MCTSConfig.final must be 'visits' or 'value', got {self.final!r}")
        for name in ("terminal_penalty", "support_penalty"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0):
                raise ValueError(f"MCTSConfig.{name} must be a number >= 0, got {v!r}")
        check_rollout_policy(self.rollout_policy)
        if self.value:
            from .roster import resolve_builder
            resolve_builder(self.value, "MCTSConfig.value")
        return self

    @classmethod
    def appendix_c4(cls, **overrides: Any) -> "MCTSConfig":
        """The paper's setting: horizon 3 actions, all of them tree actions, nothing beyond (wait)."""
        base = {"tree_depth": MCTS_TREE_DEPTH, "lookahead": MCTS_LOOKAHEAD, "rollout_policy": MCTS_ROLLOUT_POLICY}
        return config_from(cls, {**base, **overrides}, "MCTSConfig").validate()

    @classmethod
    def for_env(cls, env_name: str, **overrides: Any) -> "MCTSConfig":
        """The environment kit's planning defaults (``defaults["planning"]``), then ``overrides``."""
        from ..envs.registry import get_kit
        base = dict(get_kit(env_name).default("planning", {}) or {})
        return config_from(cls, {**base, **overrides}, "MCTSConfig").validate()


class Node:
    """An action prefix in the search tree."""

    __slots__ = ("action", "text", "parent", "depth", "children", "untried", "n", "w", "w2", "vmin", "vmax",
                 "pending", "rep")

    def __init__(self, action: dict | None, parent: "Node | None", depth: int):
        self.action = action
        self.text = format_action(action) if action is not None else "<root>"
        self.parent = parent
        self.depth = depth
        self.children: list[Node] = []
        self.untried: list[dict] | None = None  # proposals not yet expanded; None = not proposed yet
        self.n = 0  # simulations through this node
        self.w = 0.0  # sum of simulation values (each the mean over its rollouts)
        self.w2 = 0.0  # sum of squared rollout values, for the spread shown in diagnostics
        self.vmin = math.inf
        self.vmax = -math.inf
        self.pending = 0  # simulations through this node selected but not yet backed up
        self.rep: dict | None = None  # a state reached by this prefix (where its proposals are drawn)

    @property
    def mean(self) -> float:
        return self.w / self.n if self.n else float("nan")


@dataclass
class PlanResult:
    """The chosen action and what the search saw."""

    action: dict
    candidates: list[dict]  # root children, most visited first: action, visits, mean, std, min, max
    plan: list[str]  # most-visited path from the root (the open-loop plan)
    iterations: int
    model_steps: int  # sample_next calls
    transitions: int  # rows sampled in total
    seconds: float
    root_value: float
    config: dict = field(default_factory=dict)

    def to_dict(self, top: int | None = None) -> dict:
        d = asdict(self)
        if top is not None:
            d["candidates"] = d["candidates"][:top]
        return d


def simulation_values(model: Any, states: list[dict], r_prev: np.ndarray, value: np.ndarray, oos: np.ndarray,
                      disc: float, discount: float) -> tuple[np.ndarray, np.ndarray, float]:
    """One day of value bookkeeping shared by the planners: add the discounted change of money and
    count out-of-support rows.  Returns the new ``(r_prev, value, disc)``."""
    r = np.asarray(model.reward(states), dtype=float)
    value += disc * (r - r_prev)
    flags = getattr(model, "last_out_of_support", None)
    if flags is not None and len(flags) == len(states):
        oos += flags
    return r, value, disc * discount


def final_values(model: Any, states: list[dict], value: np.ndarray, oos: np.ndarray, terminal_penalty: float,
                 support_penalty: float) -> np.ndarray:
    """Apply the terminal and out-of-support penalties to the simulations' values."""
    if terminal_penalty:
        value = value - terminal_penalty * np.asarray(model.is_terminal(states), dtype=float)
    if support_penalty:
        value = value - support_penalty * float(getattr(model, "support_scale", 1.0)) * oos
    return value


class MCTS:
    """Open-loop MCTS planner over a world model (see the module docstring)."""

    def __init__(self, model: PlanningModel, proposer: Proposer, config: MCTSConfig | None = None,
                 rollout_policy: RolloutPolicy | None = None, seed: int | None = None):
        self.model = model
        self.proposer = proposer
        self.config = (config or MCTSConfig()).validate()
        # the rollout agent is seeded (the agent's seed, else 0), so a rerun plays the same rollouts
        self.rollout = rollout_policy or make_rollout_policy(self.config.rollout_policy, proposer,
                                                             self.config.n_proposals, seed=0 if seed is None else seed)
        if self.config.propose_policy:
            self.proposer = PolicyProposer(proposer, self.rollout)

    # -- one decision ----------------------------------------------------
    def plan(self, state: dict, rng: np.random.Generator | None = None) -> PlanResult:
        """Search from ``state`` and return the chosen first action with diagnostics."""
        if not isinstance(state, dict):
            raise TypeError(f"MCTS.plan expects a state dict, got {type(state).__name__}")
        rng = rng if rng is not None else np.random.default_rng()
        cfg = self.config
        t0 = time.perf_counter()
        root = Node(None, None, 0)
        root.rep = state
        self._steps = 0
        self._rows = 0
        self._lo, self._hi = math.inf, -math.inf
        self._root_policy = None
        if bool(self.model.is_terminal([state])[0]):
            wait = self.proposer.wait_action()
            return PlanResult(wait, [], [format_action(wait)], 0, 0, 0, time.perf_counter() - t0,
                              float("nan"), asdict(cfg))
        done = 0
        while done < cfg.iterations:
            b = min(cfg.batch, cfg.iterations - done)
            paths = []
            for _ in range(b):
                path = self._descend(root, rng)
                for nd in path:
                    nd.pending += 1
                paths.append(path)
            values = self._simulate(state, paths, rng)
            for path, row_values in zip(paths, values):
                self._backup(path, row_values)
            done += b
        if not root.children:  # only possible if the proposer returned nothing
            best_action = self.proposer.wait_action()
        else:
            best_action = self._final_child(root).action
        cands = sorted(root.children, key=lambda c: (-c.n, -(c.mean if c.n else -math.inf)))
        candidates = []
        for c in cands:
            var = max(c.w2 / (c.n * cfg.rollouts) - c.mean ** 2, 0.0) if c.n else float("nan")
            candidates.append({"action": c.text, "visits": c.n, "mean": c.mean, "std": math.sqrt(var),
                               "min": c.vmin, "max": c.vmax})
        plan, node = [], root
        while node.children:
            node = max(node.children, key=lambda c: (c.n, c.mean if c.n else -math.inf))
            plan.append(node.text)
        return PlanResult(best_action, candidates, plan, cfg.iterations, self._steps, self._rows,
                          time.perf_counter() - t0, root.mean, asdict(cfg))

    def _final_child(self, root: Node) -> Node:
        if self.config.final == "value":
            best = max(root.children, key=lambda c: (c.mean if c.n else -math.inf, c.n))
        else:
            best = max(root.children, key=lambda c: (c.n, c.mean if c.n else -math.inf))
        own = [c for c in root.children if c.text == self._root_policy and c.n]
        if not own or own[0] is best or not best.n:
            return best
        # the rollout policy's own action stays unless the search's choice beats it by one standard error
        own = own[0]
        r = self.config.rollouts
        var = [max(c.w2 / (c.n * r) - c.mean ** 2, 0.0) / (c.n * r) for c in (best, own)]
        return best if best.mean - own.mean > math.sqrt(sum(var)) else own

    def _descend(self, root: Node, rng: np.random.Generator) -> list[Node]:
        """Select a path from the root and expand one untried action at its end."""
        cfg = self.config
        node, path = root, [root]
        while node.depth < cfg.tree_depth:
            if node.untried is None:
                if node.rep is None:  # its first simulation is still in this batch
                    break
                props = self.proposer.propose(node.rep, rng, cfg.n_proposals)
                if node.depth == 0:
                    self._root_policy = getattr(self.proposer, "last_own", None)
                order = rng.permutation(len(props))
                node.untried = [props[i] for i in order]
            if node.untried:
                child = Node(node.untried.pop(), node, node.depth + 1)
                node.children.append(child)
                path.append(child)
                break
            if not node.children:
                break
            node = self._select(node)
            path.append(node)
        return path

    def _simulate(self, state: dict, paths: list[list[Node]], rng: np.random.Generator) -> np.ndarray:
        """Push every path's rollouts through the model together; (len(paths), rollouts) values."""
        cfg = self.config
        r_n = cfg.rollouts
        m = len(paths) * r_n
        states = [state] * m  # sample_next never mutates its inputs
        r_prev = np.asarray(self.model.reward(states), dtype=float)
        value = r_prev.copy()
        oos = np.zeros(m)
        disc = 1.0
        for d in range(cfg.lookahead):
            actions: list = [None] * m
            in_tree = []
            for i, path in enumerate(paths):
                if d + 1 < len(path):
                    actions[i * r_n:(i + 1) * r_n] = [path[d + 1].action] * r_n
                    in_tree.append(i)
            free = [j for j in range(m) if actions[j] is None]
            if free:
                acts = self.rollout([states[j] for j in free], rng)
                for j, a in zip(free, acts):
                    actions[j] = a
            states, _valid = self.model.sample_next(states, actions, 1, rng)
            self._steps += 1
            self._rows += m
            r_prev, value, disc = simulation_values(self.model, states, r_prev, value, oos, disc, cfg.discount)
            for i in in_tree:
                node = paths[i][d + 1]
                if node.rep is None:
                    node.rep = states[i * r_n]
        value = final_values(self.model, states, value, oos, cfg.terminal_penalty, cfg.support_penalty)
        return value.reshape(len(paths), r_n)

    def _backup(self, path: list[Node], values: np.ndarray) -> None:
        v = float(values.mean())
        self._lo, self._hi = min(self._lo, v), max(self._hi, v)
        vmin, vmax = float(values.min()), float(values.max())
        sq = float((values ** 2).sum())
        for nd in path:
            nd.pending -= 1
            nd.n += 1
            nd.w += v
            nd.w2 += sq
            nd.vmin = min(nd.vmin, vmin)
            nd.vmax = max(nd.vmax, vmax)

    def _select(self, node: Node) -> Node:
        span = self._hi - self._lo
        log_n = math.log(max(node.n + node.pending, 1))
        c = self.config.c_uct
        best, best_score = None, -math.inf
        for ch in node.children:
            n_eff = ch.n + ch.pending
            if n_eff == 0:
                return ch
            if ch.n:
                q = (ch.mean - self._lo) / span if span > 0 else 0.5
                q *= ch.n / n_eff  # simulations still in flight count as losses (virtual loss)
            else:
                q = 0.0
            score = q + c * math.sqrt(log_n / n_eff)
            if score > best_score:
                best, best_score = ch, score
        return best


class MCTSAgent:
    """Model-predictive control: plan with MCTS every day, play the first action.

    ``act(state)`` returns the action; ``last`` holds the latest :class:`PlanResult`.
    """

    def __init__(self, model: PlanningModel, proposer: Proposer, config: MCTSConfig | None = None,
                 seed: int | None = None, rollout_policy: RolloutPolicy | None = None, name: str = "MCTS"):
        self.planner = MCTS(model, proposer, config, rollout_policy, seed=seed)
        self.rng = np.random.default_rng(seed)
        self.name = name
        self.last: PlanResult | None = None

    @property
    def model(self) -> PlanningModel:
        return self.planner.model

    def act(self, state: dict, rng: np.random.Generator | None = None) -> dict:
        """Plan from ``state`` (with ``rng``, else the agent's own generator) and return the first action."""
        self.last = self.planner.plan(state, rng if rng is not None else self.rng)
        return self.last.action

    def diagnostics(self, top: int = 5) -> dict[str, Any]:
        """The latest decision's root candidates (top few), plan and timing, JSON-ready."""
        if self.last is None:
            return {}
        d = self.last.to_dict(top=top)
        d.pop("config", None)
        d["action"] = format_action(d["action"])
        return d


__all__ = ["MCTS", "MCTSAgent", "MCTSConfig", "PlanResult", "Node", "PlanningModel", "Proposer", "config_from",
           "simulation_values", "final_values"]
