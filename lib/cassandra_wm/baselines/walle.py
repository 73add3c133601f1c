"""WALL-E-MAPs (the paper's appendix A.1): an LLM predicts the next state, learned code rules decide validity.

Three parts, each usable alone:

* :class:`StatePredictor`: the LLM predicts the next state as a JSON object ``{variable: value}``
  from the current state and the action.  Few-shot examples are the ``k`` (5) training transitions
  whose action string is most similar to the current one (all-MiniLM-L6-v2 embeddings,
  :mod:`.embedding`), shown as earlier turns of the chat.  A reply that is not JSON, misses
  variables or has values out of range is kept as it is and scored as invalid values (the
  paper's Inv), never an error.
* :class:`RuleSet` and :func:`learn_rules`: rules are Python predicates ``rule(state, action) ->
  True/False`` written by the LLM from observed transitions (True: the action can succeed; False:
  the rule forbids it).  They run only in the bundle's sandbox (``codewm.sandbox``), as
  precondition functions of the action they belong to, on the ``{variable: value}`` view of the
  state; a rule that raises, times out or returns something else is an error of that rule for
  that transition (it neither passes nor blocks).  Learning follows WALL-E's loop in our own
  terms: find the transitions whose validity the current rules get wrong, ask the LLM for new
  rules per action from a batch of such transitions (with successful ones for contrast), run every
  candidate on all learning transitions, and keep a subset chosen greedily by coverage: a rule is
  added while it catches more refused actions not yet caught than it wrongly refuses.
* :class:`WallEModel`: both together behind the planners' world-model interface
  (``sample_next``, ``reward``, ``is_terminal``) and the proposers' validity test (``check``).
  An action the rules refuse is predicted as a day with the wait action (the environments' rule
  for refused actions).  Rows that repeat the same state and action in one call are different
  samples (``sample_index``) when the temperature is above 0, so the planners' parallel rollouts
  differ; at temperature 0 they are one request (the record/replay cache answers the repeats).

:func:`rule_learning_data` builds the rule-learning transitions as the appendix describes: MCTS
trajectories with the real simulator, then random rollouts from random points of them with a 0.2
invalid-action rate.

Departure from the paper, stated where results are shown: the LLM predicts the spec's variables
(the observation vector tables 3 and 4 score), not the environment's whole JSON state; in
planning, parts of a state that are not variables (e.g. the theme park's lists of rides) stay as
they were.
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..envs.base import EnvSpec, coerce_action, format_action, set_path
from ..codewm.llm_code import clean_code
from .common import (Budget, BudgetExhausted, ask, compact_json, parse_values, repair_value, reply_json,
                     state_view, value_schema)

log = logging.getLogger(__name__)

PROMPT_VERSION = "walle-v1"
CHARS_PER_TOKEN = 3.5


# -- transitions ----------------------------------------------------------------------------

def as_transition(rec: Any):
    """A :class:`cassandra_wm.codewm.errors.Transition` from a data record (or itself)."""
    from ..codewm.errors import Transition
    return rec if isinstance(rec, Transition) else Transition.from_record(rec)


def action_text(action: Any) -> str:
    try:
        return format_action(coerce_action(action))
    except Exception:  # noqa: BLE001 - a garbage action is shown as it is
        return str(action)


# -- state prediction ------------------------------------------------------------------------

@dataclass
class Prediction:
    """One predicted transition.

    ``values`` holds the raw predicted value of every variable (None where the reply had none);
    ``status`` says how the reply parsed (``ok``, ``not_json``, ``missing: ...``, ``llm_error``,
    ``budget``); ``seconds`` is the time of this prediction: the LLM's recorded seconds plus the
    local work (retrieval, rule checks).
    """

    valid: bool
    values: dict
    status: str
    seconds: float = 0.0
    llm_seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reason: str | None = None  # why the rules refused the action

    def to_dict(self) -> dict:
        return asdict(self)


class StatePredictor:
    """LLM next-state prediction with retrieved few-shot examples (see the module docstring).

    ``train``: transition records or :class:`~cassandra_wm.codewm.errors.Transition` objects to
    retrieve examples from; ``k`` examples per prompt; ``index`` lets several predictors share one
    :class:`~.embedding.ActionIndex`.  ``context_tokens`` bounds the prompt: the manual is shortened
    first, then examples are dropped; None means no bound.
    """

    def __init__(self, chat: Any, spec: EnvSpec, train: Sequence[Any], k: int = 5, encoder: Any = None,
                 index: Any = None, temperature: float = 0.0, max_tokens: int = 384, seed: int | None = 0,
                 include_manual: bool = True, context_tokens: int | None = None, budget: Budget | None = None,
                 stage: str | None = "06_baselines"):
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"k must be a non-negative integer, got {k!r}")
        self.chat = chat
        self.spec = spec
        self.train = [as_transition(t) for t in train]
        if k and not self.train:
            raise ValueError("StatePredictor needs training transitions to retrieve examples from (or k=0)")
        self.k = k
        if index is None and k:
            from .embedding import ActionIndex
            index = ActionIndex([action_text(t.action) for t in self.train], encoder=encoder)
        self.index = index
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.seed = seed
        self.include_manual = include_manual
        self.context_tokens = context_tokens if context_tokens is not None else getattr(chat, "context_tokens", None)
        self.budget = budget
        self.stage = stage
        self.schema = value_schema(spec)
        self.calls = 0

    # -- prompt --------------------------------------------------------------------------
    def _system(self, manual: str | None) -> str:
        s = self.spec
        text = (f"You are the world model of a simulated business, '{s.name}'. Given the state at the start of a "
                "day and the action taken that day, you predict the state at the end of the day.\n\n")
        if manual:
            text += f"MANUAL:\n{manual.strip()}\n\n"
        text += (f"VARIABLES (name, kind, type, range, meaning):\n{s.describe_variables()}\n\n"
                 "Answer with one JSON object that gives every variable above its predicted value, and nothing "
                 "else.")
        return text

    def _user(self, state: dict, action: Any) -> str:
        return f"State: {compact_json(state_view(self.spec, state))}\nAction: {action_text(action)}"

    def examples(self, action: Any) -> list:
        """The retrieved training transitions for ``action`` (most similar first)."""
        if not self.k:
            return []
        return [self.train[i] for i in self.index.top_k(action_text(action), self.k)]

    def messages(self, state: dict, action: Any, k: int | None = None, manual: str | None = "") -> list[dict]:
        """The chat for one prediction: system text, ``k`` example turns, the query."""
        if manual == "":
            manual = self.spec.manual if self.include_manual else None
        ex = self.examples(action)[: self.k if k is None else k]
        msgs = [{"role": "system", "content": self._system(manual)}]
        for t in reversed(ex):  # the most similar example sits next to the query
            msgs.append({"role": "user", "content": self._user(t.state, t.action)})
            msgs.append({"role": "assistant", "content": compact_json(state_view(self.spec, t.next_state))})
        msgs.append({"role": "user", "content": self._user(state, action)})
        return msgs

    def fitted_messages(self, state: dict, action: Any) -> list[dict]:
        """:meth:`messages` within the context budget (manual shortened, then fewer examples)."""
        msgs = self.messages(state, action)
        budget = (int(self.context_tokens) - self.max_tokens - 64) if self.context_tokens else None
        if budget is None or _tokens(msgs) <= budget:
            return msgs
        man = self.spec.manual if self.include_manual else None
        if man:
            from ..codewm.llm_code import shorten_manual
            over = _tokens(msgs) - budget
            man = shorten_manual(self.spec, max(300, len(man) - int(over * CHARS_PER_TOKEN)))
            msgs = self.messages(state, action, manual=man)
        k = self.k
        while _tokens(msgs) > budget and k > 0:
            k -= 1
            msgs = self.messages(state, action, k=k, manual=man)
        return msgs

    # -- prediction ----------------------------------------------------------------------
    def predict_values(self, state: dict, action: Any, sample_index: int = 0) -> tuple[dict, str, dict]:
        """``(values, status, usage)`` for one (state, action); never raises but for a spent budget."""
        msgs = self.fitted_messages(state, action)
        reply, err, use = ask(self.chat, msgs, self.budget, schema=self.schema, max_tokens=self.max_tokens,
                              temperature=self.temperature, seed=self.seed, sample_index=sample_index,
                              stage=self.stage)
        self.calls += 1
        if err is not None:
            vals, _ = parse_values(self.spec, None)
            return vals, "llm_error", use
        vals, status = parse_values(self.spec, reply)
        return vals, status, use


def _tokens(msgs: list[dict]) -> int:
    return int(sum(len(m["content"]) for m in msgs) / CHARS_PER_TOKEN) + 8 * len(msgs)


# -- rules ------------------------------------------------------------------------------------

_DEF = re.compile(r"^\s*def\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(", re.M)
_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)


# a rule's code field is cleaned like a code-model function's (fences, tags, escaped newlines, dedent)
clean_rule_code = clean_code


def rule_function_name(source: str) -> str | None:
    """The rule's entry point: the first top-level ``def`` (by the AST, or a regex when it does not parse)."""
    import ast
    try:
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef):
                return node.name
        return None
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        m = _DEF.search(source)
        return m.group(1) if m else None


@dataclass(frozen=True)
class Rule:
    """One learned rule: a predicate for one action, as the LLM wrote it."""

    rid: str
    action: str
    description: str
    source: str
    name: str
    round: int = 0
    origin: str = "llm"

    def checker_name(self) -> str:
        return f"walle_check_{self.rid}"

    def sandbox_source(self) -> str:
        """The LLM's code plus our adapter: the adapter calls the rule and turns True/False into the
        sandbox's ``(ok, feedback)``; anything else it returns is an error of the rule."""
        msg = json.dumps(f"refused by rule {self.rid}: {self.description[:120]}")
        return (self.source.rstrip() + "\n\n\n"
                f"def {self.checker_name()}(state, action):\n"
                f"    verdict = {self.name}(state, action)\n"
                "    if verdict is True or verdict is False:\n"
                f"        return (verdict, {msg})\n"
                "    raise TypeError('a rule must return True or False, got ' + repr(verdict)[:60])\n")


class RuleSet:
    """Candidate rules, the selected subset, and their verdicts, run in a sandbox.

    ``sandbox`` is a :class:`cassandra_wm.codewm.sandbox.Sandbox` for ``spec`` (built on first use
    when None).  Rules see the ``{variable: value}`` view of a state.
    """

    def __init__(self, spec: EnvSpec, sandbox: Any = None, call_timeout: float = 0.5):
        self.spec = spec
        self._sandbox = sandbox
        self.call_timeout = call_timeout
        self.rules: dict[str, Rule] = {}
        self.selected: list[str] = []
        self.seconds = 0.0

    @property
    def sandbox(self) -> Any:
        if self._sandbox is None:
            from ..codewm.sandbox import Sandbox
            self._sandbox = Sandbox(self.spec, call_timeout=self.call_timeout)
        return self._sandbox

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()

    def new_id(self) -> str:
        return f"r{len(self.rules) + 1:03d}"

    def add(self, action: str, source: str, description: str = "", round: int = 0, origin: str = "llm") -> Rule:
        """Add a candidate rule for ``action`` (not selected yet)."""
        self.spec.action(action)  # unknown action names fail loudly
        name = rule_function_name(source) or "rule"
        r = Rule(self.new_id(), action, str(description or ""), source, name, round, origin)
        self.rules[r.rid] = r
        return r

    def code_model(self, rids: Sequence[str] | None = None):
        """The rules ``rids`` (default: the selected ones) as a code model of precondition functions."""
        from ..codewm.model import CodeFunction, CodeModel
        rids = self.selected if rids is None else rids
        fns = {}
        for rid in rids:
            r = self.rules[rid]
            fns[rid] = CodeFunction(fid=rid, kind="precondition", name=r.checker_name(), source=r.sandbox_source(),
                                    action=r.action, description=r.description, origin=r.origin)
        return CodeModel(fns, env_name=self.spec.name, notes={"source": "WALL-E-MAPs rules"})

    def _run(self, rids: Sequence[str], states: Sequence[dict], actions: Sequence[Any]) -> list:
        items = [(state_view(self.spec, s), a) for s, a in zip(states, actions)]
        t0 = time.perf_counter()
        res = self.sandbox.evaluate(self.code_model(list(rids)), items)
        self.seconds += time.perf_counter() - t0
        return res

    def verdicts(self, rids: Sequence[str], transitions: Sequence[Any]) -> dict[str, list]:
        """Per rule, per transition: True (passes), False (refuses), "error", or None (not its action,
        or the action is not in the action space)."""
        trs = [as_transition(t) for t in transitions]
        res = self._run(rids, [t.state for t in trs], [t.action for t in trs])
        out = {rid: [] for rid in rids}
        for r, t in zip(res, trs):
            err = {fid for fid, _ in r.errors}
            name = t.action.get("name") if isinstance(t.action, dict) else None
            rejected = name not in {a.name for a in self.spec.actions}
            for rid in rids:
                if self.rules[rid].action != name or rejected:
                    out[rid].append(None)
                elif rid in err:
                    out[rid].append("error")
                else:
                    out[rid].append(rid not in r.failed)
        return out

    def evaluate(self, states: Sequence[dict], actions: Sequence[Any]) -> list:
        """The sandbox's results for the selected rules (``valid``, ``failed`` rules, ``errors``) per row."""
        return self._run(self.selected, states, actions) if states else []

    def check_batch(self, states: Sequence[dict], actions: Sequence[Any]) -> list[tuple[bool, str | None]]:
        """Predicted validity under the selected rules: ``(ok, reason)`` per row."""
        if not states:
            return []
        res = self._run(self.selected, states, actions)
        return [(bool(r.valid), None if r.valid else "; ".join(r.feedback) or "refused") for r in res]

    def check(self, state: dict, action: Any) -> tuple[bool, str | None]:
        return self.check_batch([state], [action])[0]

    def table(self, stats: dict | None = None):
        """The rules as a frame: id, action, selected, description, and per-rule statistics if given."""
        import pandas as pd
        rows = []
        for rid, r in self.rules.items():
            row = {"rule": rid, "action": r.action, "round": r.round, "selected": rid in self.selected,
                   "description": r.description[:120]}
            row.update((stats or {}).get(rid, {}))
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        return {"selected": list(self.selected), "rules": [asdict(r) for r in self.rules.values()]}

    @classmethod
    def from_dict(cls, d: dict, spec: EnvSpec, sandbox: Any = None) -> "RuleSet":
        rs = cls(spec, sandbox)
        for r in d.get("rules", []):
            rule = Rule(**r)
            rs.rules[rule.rid] = rule
        rs.selected = [rid for rid in d.get("selected", []) if rid in rs.rules]
        return rs


def select_rules(verdicts: dict[str, list], truth: Sequence[bool], base_refused: Sequence[bool] | None = None,
                 penalty: float = 1.0) -> tuple[list[str], dict[str, dict]]:
    """Greedy maximum coverage: repeatedly add the rule that catches the most refused actions not yet
    caught minus ``penalty`` times the valid actions it newly refuses; stop when no rule gains.

    ``verdicts``: per rule id, per transition True/False/"error"/None; ``truth``: observed
    validity; ``base_refused``: transitions already predicted invalid without rules.  Returns the
    chosen ids (in order) and per-rule statistics (caught, wrongly refused, errors, applicable).
    """
    n = len(truth)
    caught = set(i for i in range(n) if base_refused is not None and base_refused[i] and not truth[i])
    harmed: set[int] = set(i for i in range(n) if base_refused is not None and base_refused[i] and truth[i])
    stats = {}
    fails = {}
    for rid in sorted(verdicts):
        v = verdicts[rid]
        f = {i for i, x in enumerate(v) if x is False}
        fails[rid] = f
        stats[rid] = {"applicable": sum(x is not None for x in v), "refuses_invalid": sum(1 for i in f if not truth[i]),
                      "refuses_valid": sum(1 for i in f if truth[i]), "errors": sum(x == "error" for x in v)}
    chosen: list[str] = []
    while True:
        best, best_gain = None, 0.0
        for rid in sorted(fails):
            if rid in chosen:
                continue
            new = sum(1 for i in fails[rid] if not truth[i] and i not in caught)
            harm = sum(1 for i in fails[rid] if truth[i] and i not in harmed)
            gain = new - penalty * harm
            if gain > best_gain:
                best, best_gain = rid, gain
        if best is None:
            break
        chosen.append(best)
        caught |= {i for i in fails[best] if not truth[i]}
        harmed |= {i for i in fails[best] if truth[i]}
    return chosen, stats


RULE_SCHEMA = {
    "type": "object",
    "properties": {"rules": {"type": "array", "items": {
        "type": "object", "properties": {"description": {"type": "string"}, "code": {"type": "string"}},
        "required": ["description", "code"]}}},
    "required": ["rules"],
}


def rule_messages(spec: EnvSpec, action: str, batch: Sequence[Any], current: Sequence[Rule],
                  max_new: int = 3, include_manual: bool = True) -> list[dict]:
    """The chat asking for new rules of ``action`` from a batch of transitions."""
    system = (f"You find the rules that decide whether an action succeeds in a simulated business, '{spec.name}'.\n\n"
              + (f"MANUAL:\n{spec.manual.strip()}\n\n" if include_manual else "")
              + f"VARIABLES:\n{spec.describe_variables()}\n\nACTIONS:\n{spec.describe_actions()}\n\n"
              "A rule is a Python function `def <name>(state, action):` that returns True when the action can "
              "succeed in the state and False when the rule forbids it. state is a dict of the variables above "
              "(for example state['money']); action is {\"name\": ..., \"args\": {...}}. Plain Python only "
              "(you may import math). Each rule checks one condition.\n\n"
              "Reply with one JSON object shaped like this:\n"
              + json.dumps({"rules": [{"description": "what the rule checks",
                                       "code": "def enough_money(state, action):\n    return True"}]}))
    lines = [f"Action: {action}. Observed steps:"]
    for j, t in enumerate(batch, 1):
        outcome = "succeeded" if t.valid else f"was refused ({t.error})" if t.error else "was refused"
        lines.append(f"{j}. state {compact_json(state_view(spec, t.state))}; action {action_text(t.action)} {outcome}")
    if current:
        lines.append("Rules you already have for this action:")
        lines += [f"- {r.rid}: {r.description or r.name}" for r in current]
    lines.append(f"Write up to {max_new} new rules that refuse the refused steps and allow the successful ones.")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]


def parse_rules(reply: Any, max_new: int = 3) -> tuple[list[tuple[str, str]], list[str]]:
    """``[(description, code)]`` from a rule reply (at most ``max_new``) and notes on what was dropped."""
    notes: list[str] = []
    obj, err = reply_json(reply)
    items: list = []
    if isinstance(obj, dict) and isinstance(obj.get("rules"), list):
        items = obj["rules"]
    elif isinstance(obj, list):
        items = obj
    elif obj is None:
        items = [{"description": "", "code": m.group(1)} for m in _FENCE.finditer(reply.text or "")]
        notes.append(f"reply is not JSON ({err}); {len(items)} fenced code block(s) used")
    else:
        notes.append("reply has no 'rules' list")
    out = []
    for n, it in enumerate(items):
        if len(out) >= max_new:
            notes.append(f"only the first {max_new} rules kept")
            break
        if not isinstance(it, dict):
            notes.append(f"item {n}: not an object")
            continue
        code = clean_rule_code(it.get("code"))
        if not _DEF.search(code):
            notes.append(f"item {n}: no function definition")
            continue
        out.append((str(it.get("description") or "")[:300], code))
    return out, notes


@dataclass
class RuleLearning:
    """What :func:`learn_rules` did: the rules, a log per round, per-rule statistics, LLM usage."""

    rules: RuleSet
    rounds: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    calls: list[dict] = field(default_factory=list)
    stopped: str = ""


def validity_accuracy(pred: Sequence[bool], truth: Sequence[bool]) -> float:
    return float(np.mean([bool(p) == bool(t) for p, t in zip(pred, truth)])) if truth else float("nan")


def learn_rules(chat: Any, spec: EnvSpec, transitions: Sequence[Any], rules: RuleSet | None = None,
                rounds: int = 2, batch: int = 8, max_new: int = 3, penalty: float = 1.0, budget: Budget | None = None,
                max_tokens: int = 512, temperature: float = 0.0, seed: int = 0, include_manual: bool = True,
                stage: str | None = "06_baselines", progress: bool = True) -> RuleLearning:
    """Learn validity rules from ``transitions`` (see the module docstring).

    Each round asks the LLM once per action whose validity the current rules get wrong; a spent
    ``budget`` ends learning early (``stopped`` says so) and keeps what was learned.
    """
    from tqdm.auto import tqdm

    if rounds < 1 or batch < 1 or max_new < 1:
        raise ValueError("rounds, batch and max_new must be positive")
    trs = [as_transition(t) for t in transitions]
    if not trs:
        raise ValueError("learn_rules needs transitions")
    rules = rules or RuleSet(spec)
    truth = [t.valid for t in trs]
    rng = np.random.default_rng(seed)
    names = {a.name for a in spec.actions}
    base_refused = [t.action.get("name") not in names for t in trs]
    all_verdicts: dict[str, list] = rules.verdicts(list(rules.rules), trs) if rules.rules else {}
    out = RuleLearning(rules)
    bar = tqdm(total=rounds, desc="WALL-E rule learning", unit="round", disable=not progress)
    try:
        for rnd in range(1, rounds + 1):
            pred = [ok for ok, _ in rules.check_batch([t.state for t in trs], [t.action for t in trs])]
            before = validity_accuracy(pred, truth)
            wrong = [i for i in range(len(trs)) if pred[i] != truth[i]]
            entry = {"round": rnd, "accuracy_before": before, "wrong_before": len(wrong), "asked": [], "new_rules": 0}
            if not wrong:
                entry["note"] = "every learning transition already right"
                out.rounds.append(entry)
                break
            missed = sorted({trs[i].action.get("name") for i in wrong if not truth[i]} & names)
            new_ids = []
            for action in missed:
                bad = [i for i in wrong if trs[i].action.get("name") == action and not truth[i]]
                good = [i for i in range(len(trs)) if trs[i].action.get("name") == action and truth[i]]
                n_bad = min(len(bad), max(1, batch // 2 + batch % 2))
                pick = list(rng.choice(bad, size=n_bad, replace=False))
                if good:
                    pick += list(rng.choice(good, size=min(len(good), batch - n_bad), replace=False))
                shown = [trs[int(i)] for i in sorted(int(i) for i in pick)]
                current = [rules.rules[r] for r in rules.selected if rules.rules[r].action == action]
                msgs = rule_messages(spec, action, shown, current, max_new, include_manual)
                try:
                    reply, err, use = ask(chat, msgs, budget, schema=RULE_SCHEMA, max_tokens=max_tokens,
                                          temperature=temperature, seed=seed, stage=stage)
                except BudgetExhausted as e:
                    out.stopped = str(e)
                    break
                items, notes = ([], [err]) if reply is None else parse_rules(reply, max_new)
                for desc, code in items:
                    new_ids.append(rules.add(action, code, desc, round=rnd).rid)
                out.calls.append({"round": rnd, "action": action, "shown": len(shown), "rules": len(items),
                                  "notes": notes, **use,
                                  "reply_excerpt": (reply.text[:600] if reply is not None else "")})
                entry["asked"].append(action)
            if new_ids:
                all_verdicts.update(rules.verdicts(new_ids, trs))
            entry["new_rules"] = len(new_ids)
            rules.selected, out.stats = select_rules(all_verdicts, truth, base_refused, penalty)
            pred = [ok for ok, _ in rules.check_batch([t.state for t in trs], [t.action for t in trs])]
            entry["accuracy_after"] = validity_accuracy(pred, truth)
            entry["selected"] = list(rules.selected)
            out.rounds.append(entry)
            bar.update(1)
            if out.stopped:
                break
    finally:
        bar.close()
    if not out.stats and all_verdicts:
        _, out.stats = select_rules(all_verdicts, truth, base_refused, penalty)
    return out


# -- rule-learning data (appendix A.1) -------------------------------------------------------

RULE_DATA_TAG = 0x3A11E  # mixed into the seeds of rule-learning episodes


def rule_learning_data(env: Any, n_mcts: int = 2, days: int = 10, n_rollouts: int = 10, rollout_steps: int = 5,
                       invalid_rate: float = 0.2, mcts_config: Any = None, seed: int = 0,
                       progress: bool = True) -> list[dict]:
    """Transitions for rule learning: ``n_mcts`` episodes of MCTS on the real simulator (oracle model),
    then ``n_rollouts`` random rollouts of ``rollout_steps`` steps from random points of those
    episodes, each action deliberately invalid with probability ``invalid_rate``.

    ``mcts_config`` defaults to the environment's own planning settings
    (:meth:`~cassandra_wm.planning.mcts.MCTSConfig.for_env`: a look-ahead that lets investments pay
    back) with a small budget (10 iterations, 2 rollouts, 20 proposals), so the episodes earn well.

    Returns data records (``state, action, action_text, valid, error, next_state, source``); the
    episode seeds are drawn from ``seed`` with their own tag, so they differ from the seeds of
    data collection and evaluation.
    """
    from tqdm.auto import tqdm

    from ..envs.registry import make_agent, make_proposer
    from ..planning.mcts import MCTSAgent, MCTSConfig
    from ..world_model import OracleModel, SimulatorDeterministic

    if min(n_mcts, days) < 1 or n_rollouts < 0 or rollout_steps < 1:
        raise ValueError("n_mcts and days must be positive, n_rollouts >= 0, rollout_steps >= 1")
    if not 0.0 <= invalid_rate <= 1.0:
        raise ValueError(f"invalid_rate must be in [0, 1], got {invalid_rate!r}")
    cfg = mcts_config or MCTSConfig.for_env(env.spec.name, iterations=10, rollouts=2, n_proposals=20)
    ss = np.random.SeedSequence([int(seed), RULE_DATA_TAG])
    ep_seeds = [int(c.generate_state(1)[0]) for c in ss.spawn(n_mcts)]
    proposer = make_proposer(env.spec, SimulatorDeterministic(env))
    records: list[dict] = []
    visited: list[dict] = []
    bar = tqdm(total=n_mcts * days + n_rollouts * rollout_steps, desc="rule-learning data", unit="step",
               disable=not progress)

    def add(state, action, ok, info, nxt, source):
        records.append({"traj_id": source, "t": len(records), "state": state, "action": action,
                        "action_text": action_text(action), "valid": bool(ok),
                        "error": None if ok else str(info.get("error") or "invalid action"),
                        "next_state": nxt, "done": False, "source": source})

    try:
        for e, s in enumerate(ep_seeds):
            agent = MCTSAgent(OracleModel(env), proposer, cfg, seed=s)
            state = env.reset(s)
            rng = np.random.default_rng(s)
            for _ in range(days):
                visited.append(state)
                action = agent.act(state, rng)
                nxt, ok, info = env.transition(state, action, rng)
                add(state, action, ok, info, nxt, f"mcts{e}")
                bar.update(1)
                state = nxt
                if env.is_done(state):
                    break
        rng = np.random.default_rng(ss.spawn(1)[0])
        walker = make_agent(env, "random", invalid_rate=invalid_rate, seed=seed)
        for r in range(n_rollouts):
            state = visited[int(rng.integers(len(visited)))]
            for _ in range(rollout_steps):
                if env.is_done(state):
                    break
                action = walker.act(state, rng)
                nxt, ok, info = env.transition(state, action, rng)
                add(state, action, ok, info, nxt, f"random{r}")
                bar.update(1)
                state = nxt
    finally:
        bar.close()
    return records


# -- the world model ---------------------------------------------------------------------------

class WallEModel:
    """WALL-E-MAPs behind the planners' interface: rules for validity, the LLM for the next state.

    ``env`` (optional) supplies ``is_done``; ``wait_action`` is what a refused action is predicted
    as.  ``counters`` count LLM calls (with their tokens and milliseconds as recorded), reply problems
    and every repair made before a predicted value enters a planner's state.
    """

    def __init__(self, spec: EnvSpec, predictor: StatePredictor, rules: RuleSet, env: Any = None,
                 wait_action: dict | None = None, name: str = "WALL-E-MAPs"):
        from ..world_model import default_bookkeeping, default_terminal
        self.spec = spec
        self.predictor = predictor
        self.rules = rules
        self.name = name
        self.wait = wait_action or {"name": "wait", "args": {}}
        self.terminal = default_terminal(env, spec)
        self.bookkeeping = default_bookkeeping(spec)
        self._reward_var = spec.variable(spec.reward_variable)
        self.counters: Counter = Counter()

    # -- one transition ---------------------------------------------------------------------
    def predict(self, state: dict, action: Any, sample_index: int = 0) -> Prediction:
        """Validity from the rules, next values from the LLM (for the wait action when refused)."""
        return self.predict_batch([state], [action], [sample_index])[0]

    def predict_batch(self, states: Sequence[dict], actions: Sequence[Any],
                      sample_indices: Sequence[int] | None = None) -> list[Prediction]:
        t0 = time.perf_counter()
        checks = self.rules.check_batch(list(states), list(actions))
        share = (time.perf_counter() - t0) / max(1, len(states))
        out = []
        idx = sample_indices if sample_indices is not None else [0] * len(states)
        for s, a, (ok, why), j in zip(states, actions, checks, idx):
            t1 = time.perf_counter()
            vals, status, use = self.predictor.predict_values(s, a if ok else self.wait, int(j))
            local = time.perf_counter() - t1 - (use["seconds"] if status != "llm_error" else 0.0)
            self.counters["llm_calls"] += 1
            self.counters["llm_prompt_tokens"] += int(use["prompt_tokens"])
            self.counters["llm_completion_tokens"] += int(use["completion_tokens"])
            self.counters["llm_ms"] += int(round(1000 * float(use["seconds"])))
            if status != "ok":
                self.counters[f"reply:{status.split(':')[0]}"] += 1
            out.append(Prediction(valid=ok, values=vals, status=status,
                                  seconds=share + max(local, 0.0) + use["seconds"], llm_seconds=use["seconds"],
                                  prompt_tokens=use["prompt_tokens"], completion_tokens=use["completion_tokens"],
                                  reason=why))
        return out

    def check(self, state: dict, action: Any) -> tuple[bool, str | None]:
        """The proposers' validity test: the selected rules."""
        return self.rules.check(state, action)

    # -- planner interface --------------------------------------------------------------------
    def sample_next(self, states: Sequence[dict], actions: Sequence[Any], n: int = 1,
                    rng: np.random.Generator | None = None) -> tuple[list[dict], np.ndarray]:
        """One predicted next state per row, ``n`` samples per row (row ``i * n + j`` is sample j of row i).

        Rows that repeat a (state, action) pair get different ``sample_index`` values.  Terminal
        states are returned unchanged with ``valid=False``.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        states = [s for s in states for _ in range(int(n))]
        if isinstance(actions, (dict, str)):
            actions = [actions] * (len(states) // int(n))
        acts = [coerce_action(a) for a in actions for _ in range(int(n))]
        if len(acts) != len(states):
            raise ValueError(f"got {len(states) // int(n)} states but {len(acts) // int(n)} actions")
        self.counters["rows"] += len(states)
        out: list[dict | None] = [None] * len(states)
        valid = np.zeros(len(states), dtype=bool)
        live, seen = [], Counter()
        idx = []
        for i, s in enumerate(states):
            if self.terminal(s):
                out[i] = dict(s)
                self.counters["terminal_rows"] += 1
                continue
            key = compact_json(state_view(self.spec, s)) + "|" + action_text(acts[i])
            # at temperature 0 every sample is the same answer: one request, served from the cache after
            idx.append(seen[key] if self.predictor.temperature > 0 else 0)
            seen[key] += 1
            live.append(i)
        preds = self.predict_batch([states[i] for i in live], [acts[i] for i in live], idx)
        for i, p in zip(live, preds):
            valid[i] = p.valid
            if not p.valid:
                self.counters["invalid_actions"] += 1
            nxt = json.loads(json.dumps(states[i]))
            for v in self.spec.variables:
                prev = state_view(self.spec, states[i], [v])[v.name]
                set_path(nxt, v.path, repair_value(v, p.values.get(v.name), prev, self.counters))
            self.bookkeeping(states[i], nxt)
            out[i] = nxt
        return out, valid  # type: ignore[return-value]

    def reward(self, states: Sequence[dict]) -> np.ndarray:
        return np.array([float(state_view(self.spec, s, [self._reward_var])[self._reward_var.name] or 0.0)
                         for s in states], dtype=float)

    def is_terminal(self, states: Sequence[dict]) -> np.ndarray:
        return np.array([bool(self.terminal(s)) for s in states], dtype=bool)

    def reset_counters(self) -> None:
        self.counters = Counter()

    def counters_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in sorted(self.counters.items())}


def predict_transitions(model: WallEModel, transitions: Sequence[Any], progress: bool = True,
                        on_budget: str = "stop") -> list[Prediction]:
    """Predict every transition (sample 0); a spent budget stops early (fewer predictions returned)."""
    from tqdm.auto import tqdm
    trs = [as_transition(t) for t in transitions]
    out = []
    for t in tqdm(trs, desc="WALL-E-MAPs predictions", unit="transition", disable=not progress):
        try:
            out.append(model.predict(t.state, t.action))
        except BudgetExhausted:
            if on_budget == "stop":
                break
            raise
    return out


__all__ = ["Prediction", "StatePredictor", "Rule", "RuleSet", "select_rules", "learn_rules", "RuleLearning",
           "rule_learning_data", "WallEModel", "predict_transitions", "rule_messages", "parse_rules",
           "clean_rule_code", "RULE_SCHEMA", "PROMPT_VERSION", "validity_accuracy", "as_transition", "action_text"]
