"""Monte Carlo tree search over open-loop action sequences, re-planned every day.

Appendix C.4 of the paper, as implemented here:

* A tree node stands for an *action prefix*, not for a state: it represents the
  distribution of states reached by playing that prefix from the root state.
  Every simulation therefore samples the world model from the root state, through
  the prefix, to the horizon.
* One iteration = select (UCT), expand (one untried proposed action), simulate,
  backpropagate.  The simulation is ``rollouts`` rows (default 4) pushed through
  the model together, one ``sample_next`` call per step of the horizon.
* After the expanded action, the rest of the horizon is filled by a rollout
  policy (default: wait, i.e. the do-nothing action; or random proposals, or the
  environment's heuristic agent; see :mod:`.rollouts`).
* The value of a simulation is the predicted reward variable (money) at the
  horizon, averaged over its rollouts.  No value function is used.
* UCT works on values normalised to [0, 1] by the smallest and largest mean
  values seen so far in this tree, so the exploration constant does not depend on
  the scale of money.
* The chosen action is the most visited root child (ties broken by mean value).

Defaults are the paper's: 90 iterations, 4 rollouts per expanded node, 100
proposals per node before de-duplication, horizon 3.

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
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from ..envs.base import format_action
from ..paper import MCTS_HORIZON, MCTS_ITERATIONS, MCTS_PROPOSALS, MCTS_ROLLOUTS
from .rollouts import ROLLOUT_POLICIES, RolloutPolicy, make_rollout_policy


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


@dataclass
class MCTSConfig:
    """Search settings; the defaults are appendix C.4's."""

    iterations: int = MCTS_ITERATIONS
    rollouts: int = MCTS_ROLLOUTS
    n_proposals: int = MCTS_PROPOSALS
    horizon: int = MCTS_HORIZON
    c_uct: float = 1.0
    rollout_policy: str = "wait"  # "wait", "random" or "heuristic" (see rollouts.py)
    final: str = "visits"  # pick the root child with most "visits" or best mean "value"
    terminal_penalty: float = 0.0  # subtracted from the value of rollouts that end terminal

    def validate(self) -> "MCTSConfig":
        for name in ("iterations", "rollouts", "n_proposals", "horizon"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"MCTSConfig.{name} must be a positive integer, got {v!r}")
        if not (self.c_uct >= 0):
            raise ValueError(f"MCTSConfig.c_uct must be >= 0, got {self.c_uct!r}")
        if self.final not in ("visits", "value"):
            raise ValueError(f"MCTSConfig.final must be 'visits' or 'value', got {self.final!r}")
        if self.rollout_policy not in ROLLOUT_POLICIES:
            raise ValueError(f"MCTSConfig.rollout_policy must be one of {ROLLOUT_POLICIES}, "
                             f"got {self.rollout_policy!r}")
        return self


class Node:
    """An action prefix in the search tree."""

    __slots__ = ("action", "text", "parent", "depth", "children", "untried", "n", "w", "w2", "vmin", "vmax")

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


class MCTS:
    """Open-loop MCTS planner over a world model (see the module docstring)."""

    def __init__(self, model: PlanningModel, proposer: Proposer, config: MCTSConfig | None = None,
                 rollout_policy: RolloutPolicy | None = None):
        self.model = model
        self.proposer = proposer
        self.config = (config or MCTSConfig()).validate()
        self.rollout = rollout_policy or make_rollout_policy(self.config.rollout_policy, proposer,
                                                             self.config.n_proposals)

    # -- one decision ----------------------------------------------------
    def plan(self, state: dict, rng: np.random.Generator | None = None) -> PlanResult:
        """Search from ``state`` and return the chosen first action with diagnostics."""
        if not isinstance(state, dict):
            raise TypeError(f"MCTS.plan expects a state dict, got {type(state).__name__}")
        rng = rng if rng is not None else np.random.default_rng()
        cfg = self.config
        t0 = time.perf_counter()
        root = Node(None, None, 0)
        self._steps = 0
        self._rows = 0
        self._lo, self._hi = math.inf, -math.inf
        if bool(self.model.is_terminal([state])[0]):
            wait = self.proposer.wait_action()
            return PlanResult(wait, [], [format_action(wait)], 0, 0, 0, time.perf_counter() - t0,
                              float("nan"), asdict(cfg))
        for _ in range(cfg.iterations):
            self._iterate(root, state, rng)
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
            node = max(node.children, key=lambda c: (c.n, c.mean))
            plan.append(node.text)
        return PlanResult(best_action, candidates, plan, cfg.iterations, self._steps, self._rows,
                          time.perf_counter() - t0, root.mean, asdict(cfg))

    def _final_child(self, root: Node) -> Node:
        if self.config.final == "value":
            return max(root.children, key=lambda c: (c.mean if c.n else -math.inf, c.n))
        return max(root.children, key=lambda c: (c.n, c.mean if c.n else -math.inf))

    def _step(self, states: list[dict], actions: list[dict], rng: np.random.Generator) -> list[dict]:
        nxt, _valid = self.model.sample_next(states, actions, 1, rng)
        self._steps += 1
        self._rows += len(states)
        return nxt

    def _iterate(self, root: Node, state: dict, rng: np.random.Generator) -> None:
        cfg = self.config
        states = [state] * cfg.rollouts  # sample_next never mutates its inputs
        node = root
        path = [root]
        while node.depth < cfg.horizon:
            if node.untried is None:
                # Proposals are drawn at the first state that reaches this prefix.
                props = self.proposer.propose(states[0], rng, cfg.n_proposals)
                order = rng.permutation(len(props))
                node.untried = [props[i] for i in order]
            if node.untried:
                action = node.untried.pop()
                child = Node(action, node, node.depth + 1)
                node.children.append(child)
                states = self._step(states, [action] * len(states), rng)
                node = child
                path.append(node)
                break
            if not node.children:
                break
            node = self._select(node)
            states = self._step(states, [node.action] * len(states), rng)
            path.append(node)
        depth = node.depth
        while depth < cfg.horizon:
            states = self._step(states, self.rollout(states, rng), rng)
            depth += 1
        values = np.asarray(self.model.reward(states), dtype=float)
        if cfg.terminal_penalty:
            values = values - cfg.terminal_penalty * np.asarray(self.model.is_terminal(states), dtype=float)
        v = float(values.mean())
        self._lo, self._hi = min(self._lo, v), max(self._hi, v)
        vmin, vmax = float(values.min()), float(values.max())
        sq = float((values ** 2).sum())
        for nd in path:
            nd.n += 1
            nd.w += v
            nd.w2 += sq
            nd.vmin = min(nd.vmin, vmin)
            nd.vmax = max(nd.vmax, vmax)

    def _select(self, node: Node) -> Node:
        span = self._hi - self._lo
        log_n = math.log(max(node.n, 1))
        c = self.config.c_uct
        best, best_score = None, -math.inf
        for ch in node.children:
            if ch.n == 0:
                return ch
            q = (ch.mean - self._lo) / span if span > 0 else 0.5
            score = q + c * math.sqrt(log_n / ch.n)
            if score > best_score:
                best, best_score = ch, score
        return best


class MCTSAgent:
    """Model-predictive control: plan with MCTS every day, play the first action.

    ``act(state)`` returns the action; ``last`` holds the latest :class:`PlanResult`.
    """

    def __init__(self, model: PlanningModel, proposer: Proposer, config: MCTSConfig | None = None,
                 seed: int | None = None, rollout_policy: RolloutPolicy | None = None, name: str = "MCTS"):
        self.planner = MCTS(model, proposer, config, rollout_policy)
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


__all__ = ["MCTS", "MCTSAgent", "MCTSConfig", "PlanResult", "Node", "PlanningModel", "Proposer"]
