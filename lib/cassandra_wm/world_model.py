"""The world model of eq. 1: a deterministic source composed with a stochastic one.

    p(x_t, s_t | s_{t-1}, x_{t-1}, a_{t-1}) = p(x_t | x_{t-1}, a_{t-1}, s_t, s_{t-1})
                                              * p(s_t | s_{t-1}, x_{t-1}, a_{t-1})

The second factor is an indicator on a deterministic function: here a
:class:`DeterministicSource` gives the next deterministic variables s_t and the
action's validity.  Two sources exist:

* :class:`SimulatorDeterministic` wraps an environment's own
  ``deterministic_step`` (the paper's coffee-shop setting: "all planning
  evaluations use the ground truth simulator for deterministic effects");
* :class:`CodeModelDeterministic` wraps the learned code model phi of the code
  stream (``cassandra_wm.codewm``); see its docstring for the contract.  For a state
  with lists the code model does not return (the park's rides, shops and staff), a
  ``structure`` source lays them out;
* :class:`FallbackDeterministic` puts a second source (the simulator's step) behind
  the first for the rows the first cannot predict, and counts which served each row.

The first factor is the fitted Bayesian network (``cassandra_wm.structure.bn``):
any object with ``sample(prev_states, actions, next_det, rng) -> {node: array}``.
A stochastic model may also have ``write_fields(next_states)``, called after its
variables are written, to fill fields outside the spec's variables (the park's
items, see :mod:`cassandra_wm.structure.independent`), and ``guarded_nodes``, the
variables the support guard checks (default: every sampled one).

:class:`WorldModel` puts the two together behind ``sample_next(states, actions,
n, rng) -> (next_states, valid)``; :class:`OracleModel` puts the real simulator
behind the same interface.  Planners only talk to that interface.

Guard rails, each counted in :attr:`WorldModel.counters` for the run log:

* a numeric prediction outside its variable's bounds is clipped (``clipped``),
  a non-finite one keeps the previous value (``nonfinite``), an integer
  variable is rounded, an unknown category keeps the previous value
  (``bad_category``);
* an action the deterministic source rejects is counted (``invalid_actions``);
  the day's own dynamics still run, as in the environments;
* an exception inside the deterministic source (e.g. generated code failing)
  is counted (``det_errors``) and treated as an invalid action with the
  previous deterministic values kept;
* terminal states (bankrupt, or past the episode's horizon) are absorbing:
  they are returned unchanged with ``valid=False`` (``terminal_rows``);
* with a ``support`` (the region the network's training data cover, see
  :class:`cassandra_wm.planning.support.DataSupport`) the network is kept inside its
  data: an accumulator's input (money) beyond the data is fed as the nearest level
  the data show and the predicted change carried over (``input_clamped:<var>``);
  a sampled value outside the data (for an accumulator: a change outside the data's
  changes) is clipped into it (``out_of_support:<var>``; rows with any such value:
  ``out_of_support_rows`` of ``network_rows``).  ``last_out_of_support`` flags the
  rows of the latest call, which planners may penalise.

States are never modified in place; returned states are fresh dicts that may
share untouched nested containers with their inputs (copy-on-write along the
variables' JSON pointers).
"""
from __future__ import annotations

import inspect
import math
from collections import Counter
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from .envs.base import EnvSpec, VariableSpec, coerce_action, get_path, pointer_tokens

EXEC_ERROR = "E_exec:"  # prefix of error messages that report a failure of the deterministic source itself

# -- small helpers ---------------------------------------------------------------


def _tokens(pointer: str) -> list[str]:
    if not pointer.startswith("/") or pointer == "/":
        raise ValueError(f"bad JSON pointer for a variable: {pointer!r}")
    return pointer_tokens(pointer)


class _Writer:
    """Writes variable values into copies of states, copying only containers on the way."""

    def __init__(self, spec: EnvSpec):
        self.tokens = {v.name: _tokens(v.path) for v in spec.variables}
        self.flat = all(len(t) == 1 for t in self.tokens.values())

    def copy(self, state: dict) -> dict:
        return dict(state)

    def set(self, state: dict, name: str, value: Any, copied: set | None = None) -> None:
        """Set variable ``name`` in ``state`` (a fresh top-level copy); nested containers on
        the path are copied once per state (tracked in ``copied``)."""
        toks = self.tokens[name]
        if len(toks) == 1:
            state[toks[0]] = value
            return
        cur = state
        prefix: tuple = ()
        for tok in toks[:-1]:
            key = int(tok) if isinstance(cur, list) else tok
            prefix = prefix + (tok,)
            child = cur[key]
            if copied is None or prefix not in copied:
                child = list(child) if isinstance(child, list) else dict(child)
                cur[key] = child
                if copied is not None:
                    copied.add(prefix)
            cur = child
        last = toks[-1]
        cur[int(last) if isinstance(cur, list) else last] = value


def _getter(pointer: str) -> Callable[[dict], Any]:
    toks = _tokens(pointer)
    if len(toks) == 1:
        k = toks[0]
        return lambda s: s[k]
    return lambda s: get_path(s, pointer)


# -- deterministic sources ---------------------------------------------------------


class DeterministicSource(Protocol):
    """Next deterministic variables and action validity for a batch of rows."""

    name: str

    def step(self, states: Sequence[dict], actions: Sequence[dict]) -> tuple[list[dict], np.ndarray, list]:
        """Returns ``(det, valid, errors)`` per row: ``det`` is either a ``{variable: value}`` dict of
        the deterministic variables or a full post-action state (any other key present), which then
        becomes the base of the next state (so structural changes such as a placed ride carry over);
        ``valid`` a bool and ``errors`` a message or None."""
        ...

    def check(self, state: dict, action: dict) -> tuple[bool, str | None]:
        """Is ``action`` valid in ``state``?  ``(ok, reason)``."""
        ...


class SimulatorDeterministic:
    """The simulator's own deterministic step (``env.deterministic_step``) as the source.

    The coffee shop returns the next deterministic variables; the theme park returns the whole
    state after the morning action; both forms are understood by :class:`WorldModel`.
    """

    def __init__(self, env: Any):
        if not hasattr(env, "deterministic_step"):
            raise TypeError(f"{type(env).__name__} has no deterministic_step(state, action); "
                            "use another deterministic source")
        self.env = env
        self.name = f"simulator:{env.spec.name}"

    def step(self, states: Sequence[dict], actions: Sequence[dict]) -> tuple[list[dict], np.ndarray, list]:
        vals, valid, errors = [], np.zeros(len(states), dtype=bool), []
        det = self.env.deterministic_step
        for i, (s, a) in enumerate(zip(states, actions)):
            v, ok, err = det(s, a)
            vals.append(v)
            valid[i] = ok
            errors.append(err)
        return vals, valid, errors

    def check(self, state: dict, action: dict) -> tuple[bool, str | None]:
        if hasattr(self.env, "check_action"):
            _, err = self.env.check_action(state, action)
            return err is None, err
        _, ok, err = self.env.deterministic_step(state, action)
        return bool(ok), err


class CodeModelDeterministic:
    """A learned code model phi (the code stream) as the deterministic source.

    The adapter needs one method of the code model::

        code_model.predict(state, action) -> (next_state: dict | None, valid: bool, error: str | None)

    returning the state after preconditions, the action's patch (if valid) and the
    dynamic patch, applied in that order, as the code stream defines phi, and
    ``error`` naming execution errors of its functions (None when there were none).
    :class:`cassandra_wm.codewm.evaluate.SandboxedCodeModel` (phi plus its sandbox)
    is such a model.  Only the deterministic variables of ``next_state`` are read
    here; the stochastic ones are left to the Bayesian network.  Execution errors,
    ``next_state=None`` and exceptions are counted as ``det_errors`` by the world
    model; the latter two also make the row invalid and keep the previous
    deterministic values.  ``predict_batch(states, actions)``, when present, is used
    instead of row-by-row calls.
    """

    def __init__(self, code_model: Any, spec: EnvSpec, structure: Any | None = None):
        if not (hasattr(code_model, "predict") or hasattr(code_model, "predict_batch")):
            raise TypeError(f"{type(code_model).__name__} has neither predict(state, action) nor "
                            "predict_batch(states, actions)")
        if structure is not None and not hasattr(structure, "step"):
            raise TypeError(f"structure must be a deterministic source with step(), got {type(structure).__name__}")
        self.model = code_model
        self.spec = spec
        self.structure = structure
        self.name = f"code:{getattr(code_model, 'name', type(code_model).__name__)}"
        self._det = [(v.name, _getter(v.path)) for v in spec.deterministic]
        self._writer = _Writer(spec)
        self.last_counts: dict[str, int] = {}

    def _one(self, state: dict, action: dict) -> tuple[dict, bool, str | None]:
        if hasattr(self.model, "predict"):
            nxt, ok, err = self.model.predict(state, action)
        else:
            nxt, ok, err = self.model.predict_batch([state], [action])[0]
        return self._read(state, nxt, ok, err)

    def _read(self, state: dict, nxt: Any, ok: Any, err: Any) -> tuple[dict, bool, str | None]:
        if err:  # the code model reports execution errors of its functions here
            err = err if str(err).startswith(EXEC_ERROR) else f"{EXEC_ERROR} {err}"
        if not isinstance(nxt, dict):
            return ({n: g(state) for n, g in self._det}, False,
                    err or f"{EXEC_ERROR} code model returned no next state")
        vals = {}
        for n, g in self._det:
            try:
                vals[n] = g(nxt)
            except (KeyError, IndexError, TypeError, ValueError):
                vals[n] = g(state)
        return vals, bool(ok), err

    def step(self, states: Sequence[dict], actions: Sequence[dict]) -> tuple[list[dict], np.ndarray, list]:
        if hasattr(self.model, "predict_batch"):
            outs = self.model.predict_batch(list(states), list(actions))
            rows = [self._read(s, *o) for s, o in zip(states, outs)]
        else:
            rows = [self._one(s, a) for s, a in zip(states, actions)]
        vals, valid, errs = [r[0] for r in rows], np.array([r[1] for r in rows], dtype=bool), [r[2] for r in rows]
        self.last_counts = {}
        if self.structure is not None:
            vals = self._with_structure(states, actions, vals, valid)
        return vals, valid, errs

    def _with_structure(self, states: Sequence[dict], actions: Sequence[dict], vals: list[dict],
                        valid: np.ndarray) -> list[dict]:
        """Full next states: the lists the code model does not return (the park's rides, shops, staff)
        from ``structure`` where both agree the action is valid, else the previous state; the
        deterministic variables and the validity are phi's."""
        base, ok, _ = self.structure.step(states, actions)
        out, disagree = [], 0
        for s, b, o, v, phi_ok in zip(states, base, np.asarray(ok, dtype=bool), vals, valid):
            disagree += bool(o) != bool(phi_ok)
            full = dict(b) if (o and phi_ok and isinstance(b, dict)) else dict(s)
            copied: set = set()
            for name, x in v.items():
                self._writer.set(full, name, x, copied)
            out.append(full)
        self.last_counts = {"det_validity_disagreements": disagree}
        return out

    def check(self, state: dict, action: dict) -> tuple[bool, str | None]:
        _, ok, err = self._one(state, action)
        return ok, err


class FallbackDeterministic:
    """A deterministic source (a code model) with another (the simulator's own step) standing in for the
    rows it cannot predict: rows whose call raised (a batch that raises is retried row by row), reported an
    execution error (``E_exec``) or returned no next state.  ``last_counts`` (added to the world model's counters) says which source served how many
    rows: ``det_rows:<primary>`` and ``det_fallback_rows``."""

    def __init__(self, primary: Any, fallback: Any):
        for src in (primary, fallback):
            if not hasattr(src, "step"):
                raise TypeError(f"{type(src).__name__} is not a deterministic source (no step())")
        self.primary, self.fallback = primary, fallback
        self.name = f"{primary.name}, {fallback.name} where it fails"
        self.last_counts: dict[str, int] = {}

    def step(self, states: Sequence[dict], actions: Sequence[dict]) -> tuple[list[dict], np.ndarray, list]:
        states, actions = list(states), list(actions)
        try:
            vals, ok, errs = self._primary(states, actions)
        except Exception:  # noqa: BLE001 - generated code may fail in any way: retry row by row
            vals, ok, errs = [None] * len(states), np.zeros(len(states), dtype=bool), [None] * len(states)
            for i, (s, a) in enumerate(zip(states, actions)):
                try:
                    v, o, e = self._primary([s], [a])
                    vals[i], ok[i], errs[i] = v[0], o[0], e[0]
                except Exception:  # noqa: BLE001
                    pass
        bad = [i for i, (v, e) in enumerate(zip(vals, errs))
               if not isinstance(v, dict) or (isinstance(e, str) and e.startswith(EXEC_ERROR))]
        counts = dict(getattr(self.primary, "last_counts", None) or {})
        if bad:
            fv, fo, fe = self.fallback.step([states[i] for i in bad], [actions[i] for i in bad])
            for j, i in enumerate(bad):
                vals[i], ok[i], errs[i] = fv[j], bool(fo[j]), fe[j]
        counts[f"det_rows:{self.primary.name}"] = len(states) - len(bad)
        counts["det_fallback_rows"] = len(bad)
        self.last_counts = counts
        return vals, ok, errs

    def _primary(self, states: list, actions: list) -> tuple[list, np.ndarray, list]:
        vals, ok, errs = self.primary.step(states, actions)
        vals, ok, errs = list(vals), np.array(ok, dtype=bool), list(errs)
        if len(vals) != len(states) or ok.shape != (len(states),) or len(errs) != len(states):
            raise ValueError("the primary source returned the wrong number of rows")
        return vals, ok, errs

    def check(self, state: dict, action: dict) -> tuple[bool, str | None]:
        _, ok, err = self.step([state], [action])
        return bool(ok[0]), err[0]


# -- terminal states and bookkeeping -----------------------------------------------


def default_terminal(env: Any | None, spec: EnvSpec) -> Callable[[dict], bool]:
    """``env.is_done`` when the environment has it, else the state's own flags: ``bankrupt`` or
    ``game_over`` set, or ``day`` reached ``horizon``."""
    if env is not None and hasattr(env, "is_done"):
        return env.is_done

    def done(s: dict) -> bool:
        if s.get("bankrupt") or s.get("game_over"):
            return True
        try:
            return "day" in s and "horizon" in s and int(s["day"]) >= int(s["horizon"])
        except (TypeError, ValueError):
            return False
    return done


def default_bookkeeping(spec: EnvSpec) -> Callable[[dict, dict], None]:
    """Advance the bookkeeping fields the environments keep beside their variables.

    ``day`` (or ``step``) is incremented, ``bankrupt`` set when the reward variable (money)
    goes below zero (the rule of both simulators) and ``game_over`` set when
    bankrupt or out of days; pass another function to :class:`WorldModel` for
    other rules.
    """
    reward = _getter(spec.variable(spec.reward_variable).path)

    def bookkeeping(prev: dict, nxt: dict) -> None:
        for clock in ("day", "step"):  # the coffee shop counts days, the park (like the real game) steps
            if clock in prev:
                nxt[clock] = int(prev[clock]) + 1
        if "bankrupt" in prev:
            try:
                nxt["bankrupt"] = bool(prev.get("bankrupt")) or float(reward(nxt)) < 0
            except (TypeError, ValueError):
                nxt["bankrupt"] = bool(prev.get("bankrupt"))
        if "game_over" in prev:
            over = bool(nxt.get("bankrupt"))
            clock = "day" if "day" in nxt else "step"
            if clock in nxt and "horizon" in nxt:
                over = over or int(nxt[clock]) >= int(nxt["horizon"])
            nxt["game_over"] = over
    return bookkeeping


# -- the composed model ------------------------------------------------------------


def _new_counters() -> Counter:
    return Counter()


class _Base:
    """Shared parts of the composed and the oracle model: reward, terminal, counters."""

    spec: EnvSpec

    def _init_base(self, spec: EnvSpec, terminal: Callable[[dict], bool]) -> None:
        self.spec = spec
        self.terminal = terminal
        self._reward = _getter(spec.variable(spec.reward_variable).path)
        self.counters: Counter = _new_counters()

    def use_value(self, fn: Callable[[dict], float]) -> None:
        """Let :meth:`reward` (what a planner maximises) return ``fn(state)`` instead of the reward variable."""
        if not callable(fn):
            raise TypeError(f"value must be a function of the state, got {fn!r}")
        self._reward = fn

    def reward(self, states: Sequence[dict]) -> np.ndarray:
        """The reward variable (money) of each state, as floats (or the function set by :meth:`use_value`)."""
        g = self._reward
        return np.fromiter((float(g(s)) for s in states), dtype=np.float64, count=len(states))

    def is_terminal(self, states: Sequence[dict]) -> np.ndarray:
        """True for states where the episode is over (bankrupt or past the horizon)."""
        t = self.terminal
        return np.fromiter((bool(t(s)) for s in states), dtype=bool, count=len(states))

    def reset_counters(self) -> None:
        """Zero the counters in place (guards holding a reference keep counting into them)."""
        self.counters.clear()

    def counters_dict(self) -> dict[str, int]:
        """A plain copy of the counters, for the run log."""
        return {k: int(v) for k, v in sorted(self.counters.items())}

    @staticmethod
    def _expand(states: Sequence[dict], actions: Sequence[Any], n: int) -> tuple[list[dict], list[dict]]:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        states = list(states)
        if isinstance(actions, (dict, str)):
            actions = [actions] * len(states)
        actions = list(actions)
        if len(states) != len(actions):
            raise ValueError(f"got {len(states)} states but {len(actions)} actions")
        for i, s in enumerate(states):
            if not isinstance(s, dict):
                raise TypeError(f"state {i} is a {type(s).__name__}, not a dict")
        acts = []
        cache: dict[int, dict] = {}
        for a in actions:
            c = cache.get(id(a))
            if c is None:
                c = coerce_action(a)  # raises ActionParseError on garbage
                cache[id(a)] = c
            acts.append(c)
        if n > 1:
            states = [s for s in states for _ in range(n)]
            acts = [a for a in acts for _ in range(n)]
        return states, acts


class WorldModel(_Base):
    """Deterministic source + stochastic model (eq. 1), sampled in batches.

    ``spec``: the environment spec; ``deterministic``: a :class:`DeterministicSource`;
    ``stochastic``: a fitted Bayesian network (``sample(prev_states, actions,
    next_det, rng)``, optionally accepting ``valid=``).  ``terminal`` and
    ``bookkeeping`` default to :func:`default_terminal` / :func:`default_bookkeeping`;
    ``env`` (optional) supplies ``is_done``.
    """

    def __init__(self, spec: EnvSpec, deterministic: DeterministicSource, stochastic: Any,
                 terminal: Callable[[dict], bool] | None = None,
                 bookkeeping: Callable[[dict, dict], None] | None = None, env: Any | None = None,
                 name: str | None = None, support: Any | None = None, support_mode: str = "clip"):
        if support_mode not in ("clip", "count"):
            raise ValueError(f"support_mode must be 'clip' or 'count', got {support_mode!r}")
        if support is not None and not (hasattr(support, "level") and hasattr(support, "change")):
            raise TypeError(f"support must have level() and change() (a DataSupport), got {type(support).__name__}")
        if not hasattr(stochastic, "sample"):
            raise TypeError(f"the stochastic model {type(stochastic).__name__} has no sample() method")
        if env is None and isinstance(deterministic, SimulatorDeterministic):
            env = deterministic.env
        self._init_base(spec, terminal or default_terminal(env, spec))
        self.deterministic = deterministic
        self.stochastic = stochastic
        self.bookkeeping = bookkeeping or default_bookkeeping(spec)
        self.name = name or f"{getattr(stochastic, 'name', type(stochastic).__name__)}+{deterministic.name}"
        self._writer = _Writer(spec)
        self._det_vars = [v for v in spec.deterministic]
        self._det_names = {v.name for v in self._det_vars}
        self._var = {v.name: v for v in spec.variables}
        self._get = {v.name: _getter(v.path) for v in spec.variables}
        try:
            params = inspect.signature(stochastic.sample).parameters
            self._pass_valid = "valid" in params
        except (TypeError, ValueError):
            self._pass_valid = False
        self.support = support
        self.support_mode = support_mode
        self.last_out_of_support: np.ndarray = np.zeros(0, dtype=bool)
        self._acc = []  # (variable, level range) of accumulators whose input is kept in the data's range
        if support is not None:
            for name in getattr(support, "accumulators", ()):
                v = self._var.get(name)
                if v is not None and v.kind == "stochastic" and v.type == "numeric" and support.level(name):
                    self._acc.append((v, support.level(name)))

    @property
    def support_scale(self) -> float:
        """Money units of one out-of-support step for planners' penalties: the data's spread of the
        reward's daily change (1.0 without a support)."""
        return float(getattr(self.support, "reward_scale", 1.0)) if self.support is not None else 1.0

    def sample_next(self, states: Sequence[dict], actions: Sequence[Any], n: int = 1,
                    rng: np.random.Generator | None = None) -> tuple[list[dict], np.ndarray]:
        """Sample one next state per (state, action) row, ``n`` times per row.

        Rows are repeated: output row ``i * n + j`` is sample ``j`` of input row ``i``.
        Returns the next states and a bool array of action validity.
        """
        rng = rng if rng is not None else np.random.default_rng()
        states, acts = self._expand(states, actions, n)
        m = len(states)
        out: list[dict | None] = [None] * m
        valid = np.zeros(m, dtype=bool)
        self.last_out_of_support = np.zeros(m, dtype=bool)
        self.counters["calls"] += 1
        self.counters["rows"] += m
        if m == 0:
            return [], valid
        live = []
        for i, s in enumerate(states):
            if self.terminal(s):
                out[i] = dict(s)
            else:
                live.append(i)
        self.counters["terminal_rows"] += m - len(live)
        if not live:
            return out, valid  # type: ignore[return-value]
        ls = [states[i] for i in live]
        la = [acts[i] for i in live]
        det_vals, det_valid, _errors = self._deterministic(ls, la)
        valid[live] = det_valid
        self.counters["invalid_actions"] += int((~det_valid).sum())
        nxt = []
        det_names = self._det_names
        for s, dv in zip(ls, det_vals):
            copied: set = set()
            if isinstance(dv, dict) and not det_names.issuperset(dv):
                # a full post-action state (e.g. the theme park's placements): the base of the next state
                ns = self._writer.copy(dv)
                for v in self._det_vars:
                    try:
                        x = self._get[v.name](dv)
                    except (KeyError, IndexError, TypeError, ValueError):
                        x = None
                    y = self._checked(v, x, s)
                    if y is not x:
                        self._writer.set(ns, v.name, y, copied)
            else:
                ns = self._writer.copy(s)
                for v in self._det_vars:
                    x = dv.get(v.name, None) if isinstance(dv, dict) else None
                    x = self._checked(v, x, s)
                    self._writer.set(ns, v.name, x, copied)
            nxt.append((ns, copied))
        next_states = [t[0] for t in nxt]
        kwargs = {"valid": det_valid} if self._pass_valid else {}
        net_in, shifts = self._clamp_inputs(ls)
        sampled = self.stochastic.sample(net_in, la, next_states, rng, **kwargs)
        # a network that clips its own samples reports how many it clipped in this call
        for name, c in (getattr(self.stochastic, "last_clip_counts", None) or {}).items():
            if c:
                self.counters[f"clipped:{name}"] += int(c)
        self.counters["network_rows"] += len(ls)
        if self.support is not None and isinstance(sampled, dict):
            sampled = dict(sampled)
            for name, shift in shifts.items():
                if name in sampled:
                    sampled[name] = np.asarray(sampled[name], dtype=np.float64) + shift
            oos = self._keep_in_support(ls, sampled)
            self.last_out_of_support[live] = oos
        self._write_stochastic(ls, nxt, sampled)
        write_fields = getattr(self.stochastic, "write_fields", None)
        if write_fields is not None:  # fields outside the spec's variables (e.g. the park's items)
            for k, c in (write_fields(next_states) or {}).items():
                self.counters[k] += int(c)
            self.counters["field_rows"] += len(ls)
        for (ns, _), s, i in zip(nxt, ls, live):
            self.bookkeeping(s, ns)
            out[i] = ns
        return out, valid  # type: ignore[return-value]

    # -- the support guard ----------------------------------------------------
    def _clamp_inputs(self, states: list[dict]) -> tuple[list[dict], dict[str, np.ndarray]]:
        """States for the network with accumulator levels inside the data's range, and the shift
        (true - fed level) to add back to each accumulator's sample."""
        if not self._acc:
            return states, {}
        shifts, fed = {}, list(states)
        for v, (lo, hi) in self._acc:
            g = self._get[v.name]
            x = np.array([float(g(s)) for s in states], dtype=np.float64)
            c = np.clip(x, lo, hi)
            moved = np.flatnonzero(np.isfinite(x) & (c != x))
            if moved.size == 0:
                continue
            self.counters[f"input_clamped:{v.name}"] += int(moved.size)
            for i in moved:
                if fed[i] is states[i]:
                    fed[i] = self._writer.copy(states[i])
                self._writer.set(fed[i], v.name, float(c[i]), set())
            shifts[v.name] = np.where(np.isfinite(x), x - c, 0.0)
        return fed, shifts

    def _keep_in_support(self, prev: list[dict], sampled: dict) -> np.ndarray:
        """Count (and in ``clip`` mode clip) sampled values outside the support; per-row flags."""
        sup = self.support
        rows = np.zeros(len(prev), dtype=bool)
        acc = {v.name for v, _ in self._acc} | set(getattr(sup, "accumulators", ()))
        guarded = getattr(self.stochastic, "guarded_nodes", None)  # None: every sampled variable
        for name, arr in list(sampled.items()):
            if guarded is not None and name not in guarded:
                continue
            v = self._var.get(name)
            if v is None or v.kind != "stochastic" or v.type != "numeric":
                continue
            x = np.asarray(arr, dtype=np.float64).reshape(len(prev))
            if name in acc:
                rng_ = sup.change(name)
                if rng_ is None:
                    continue
                p = np.array([float(self._get[name](s)) for s in prev], dtype=np.float64)
                d = x - p
                bad = np.isfinite(d) & ((d < rng_[0]) | (d > rng_[1]))
                fixed = p + np.clip(d, rng_[0], rng_[1])
            else:
                rng_ = sup.level(name)
                if rng_ is None:
                    continue
                bad = np.isfinite(x) & ((x < rng_[0]) | (x > rng_[1]))
                fixed = np.clip(x, rng_[0], rng_[1])
            if bad.any():
                self.counters[f"out_of_support:{name}"] += int(bad.sum())
                rows |= bad
                if self.support_mode == "clip":
                    sampled[name] = np.where(bad, fixed, x)
        self.counters["out_of_support_rows"] += int(rows.sum())
        return rows

    # -- pieces -------------------------------------------------------------
    def _deterministic(self, states: list[dict], acts: list[dict]) -> tuple[list[dict], np.ndarray, list]:
        """Run the source once per distinct (state object, action object) pair; errors become invalid rows."""
        keys: dict[tuple[int, int], int] = {}
        uniq_s, uniq_a, index = [], [], []
        for s, a in zip(states, acts):
            k = (id(s), id(a))
            j = keys.get(k)
            if j is None:
                j = keys[k] = len(uniq_s)
                uniq_s.append(s)
                uniq_a.append(a)
            index.append(j)
        try:
            vals, ok, errs = self.deterministic.step(uniq_s, uniq_a)
            for k, c in (getattr(self.deterministic, "last_counts", None) or {}).items():
                self.counters[k] += int(c)
            ok = np.asarray(ok, dtype=bool)
            if len(vals) != len(uniq_s) or ok.shape != (len(uniq_s),):
                raise ValueError(f"deterministic source returned {len(vals)} rows for {len(uniq_s)}")
        except Exception:  # a whole-batch failure: fall back to row by row
            vals, ok, errs = [], np.zeros(len(uniq_s), dtype=bool), []
            for r, (s, a) in enumerate(zip(uniq_s, uniq_a)):
                try:
                    v1, ok1, e1 = self.deterministic.step([s], [a])
                    vals.append(v1[0])
                    ok[r] = bool(ok1[0])
                    errs.append(e1[0])
                except Exception as e:  # noqa: BLE001 - generated code may raise anything
                    vals.append({v.name: self._get[v.name](s) for v in self._det_vars})
                    errs.append(f"{EXEC_ERROR} deterministic source failed: {type(e).__name__}: {e}")
        errors = [errs[j] for j in index]
        self.counters["det_errors"] += sum(1 for e in errors if isinstance(e, str) and e.startswith(EXEC_ERROR))
        return [vals[j] for j in index], ok[index], errors

    def _checked(self, v: VariableSpec, x: Any, prev: dict) -> Any:
        """One deterministic value, repaired if missing or out of bounds."""
        if x is None:
            self.counters[f"missing:{v.name}"] += 1
            return self._get[v.name](prev)
        if v.type == "categorical":
            if v.categories is not None and x not in v.categories:
                self.counters[f"bad_category:{v.name}"] += 1
                return self._get[v.name](prev)
            return x
        try:
            f = float(x)
        except (TypeError, ValueError, OverflowError):  # e.g. an int too large for a float
            f = math.nan
        if not math.isfinite(f):
            self.counters[f"nonfinite:{v.name}"] += 1
            return self._get[v.name](prev)
        lo = -math.inf if v.low is None else v.low
        hi = math.inf if v.high is None else v.high
        if f < lo or f > hi:
            self.counters[f"clipped:{v.name}"] += 1
            f = min(max(f, lo), hi)
        elif isinstance(x, (int, float)) and not isinstance(x, bool) and (not v.integer or f == int(f)):
            return x  # in bounds and of a plain type: kept as given
        if v.integer:
            return int(round(f))
        return f

    def _write_stochastic(self, prev: list[dict], nxt: list, sampled: Any) -> None:
        if not isinstance(sampled, dict):
            raise TypeError(f"stochastic.sample must return a dict of arrays, got {type(sampled).__name__}")
        m = len(prev)
        for name, arr in sampled.items():
            v = self._var.get(name)
            if v is None or v.kind == "deterministic":
                self.counters["ignored_outputs"] += 1
                continue
            vals = np.asarray(arr)
            if vals.shape[:1] != (m,):
                raise ValueError(f"stochastic.sample returned {vals.shape[0] if vals.ndim else 'a scalar'} "
                                 f"values for {name!r}, expected {m}")
            if v.type == "categorical":
                self._write_categorical(v, vals, prev, nxt)
            else:
                self._write_numeric(v, vals, prev, nxt)
        missing = [v.name for v in self.spec.stochastic if v.name not in sampled]
        for name in missing:  # not modelled by the network: held at the previous value
            self.counters[f"held:{name}"] += m

    def _write_numeric(self, v: VariableSpec, vals: np.ndarray, prev: list[dict], nxt: list) -> None:
        x = vals.astype(np.float64, copy=False).reshape(len(prev))
        bad = ~np.isfinite(x)
        if bad.any():
            self.counters[f"nonfinite:{v.name}"] += int(bad.sum())
            g = self._get[v.name]
            x = x.copy()
            for i in np.flatnonzero(bad):
                x[i] = float(g(prev[i]))
        lo = -np.inf if v.low is None else v.low
        hi = np.inf if v.high is None else v.high
        out = (x < lo) | (x > hi)
        if out.any():
            self.counters[f"clipped:{v.name}"] += int(out.sum())
            x = np.clip(x, lo, hi)
        if v.integer:
            xs = np.rint(x).astype(np.int64).tolist()
        else:
            xs = x.tolist()
        w = self._writer
        toks = w.tokens[v.name]
        if len(toks) == 1:  # top-level variable: plain item assignment
            key = toks[0]
            for (ns, _), val in zip(nxt, xs):
                ns[key] = val
        else:
            for (ns, copied), val in zip(nxt, xs):
                w.set(ns, v.name, val, copied)

    def _write_categorical(self, v: VariableSpec, vals: np.ndarray, prev: list[dict], nxt: list) -> None:
        cats = v.categories
        g = self._get[v.name]
        w = self._writer
        for i, ((ns, copied), val) in enumerate(zip(nxt, vals.tolist())):
            if cats is not None and val not in cats:
                self.counters[f"bad_category:{v.name}"] += 1
                val = g(prev[i])
            w.set(ns, v.name, val, copied)


class OracleModel(_Base):
    """The real simulator behind the world-model interface (uses ``env.transition``).

    Every row gets its own random stream derived from ``rng``, so rows are
    independent samples and a seeded call is reproducible.
    """

    def __init__(self, env: Any, name: str = "oracle"):
        if not hasattr(env, "transition"):
            raise TypeError(f"{type(env).__name__} has no transition(state, action, rng)")
        self._init_base(env.spec, default_terminal(env, env.spec))
        self.env = env
        self.name = name

    def sample_next(self, states: Sequence[dict], actions: Sequence[Any], n: int = 1,
                    rng: np.random.Generator | None = None) -> tuple[list[dict], np.ndarray]:
        """As :meth:`WorldModel.sample_next`, sampling the simulator itself."""
        rng = rng if rng is not None else np.random.default_rng()
        states, acts = self._expand(states, actions, n)
        m = len(states)
        self.counters["calls"] += 1
        self.counters["rows"] += m
        seeds = rng.integers(0, 2 ** 63 - 1, size=m)
        out, valid = [], np.zeros(m, dtype=bool)
        for i, (s, a) in enumerate(zip(states, acts)):
            if self.terminal(s):
                self.counters["terminal_rows"] += 1
                out.append(dict(s))
                continue
            ns, ok, _info = self.env.transition(s, a, np.random.default_rng(int(seeds[i])))
            valid[i] = ok
            if not ok:
                self.counters["invalid_actions"] += 1
            out.append(ns)
        return out, valid


__all__ = ["EXEC_ERROR", "WorldModel", "OracleModel", "DeterministicSource", "SimulatorDeterministic", "CodeModelDeterministic",
           "FallbackDeterministic",
           "default_terminal", "default_bookkeeping"]
