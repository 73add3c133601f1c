"""Can refinement repair code?  A reference code model, injected faults, and a scripted expert.

**Evaluation controls, not learners.**  :func:`reference_model` is a code model of the coffee
shop written by hand from its manual (the rules the manual states: price steps, costs,
capacities, the upgrade ladder, the cleaning rule, argument ranges).  :func:`inject_faults`
breaks it in one place at a time (a wrong constant, a missing precondition, a dropped effect),
and :class:`ScriptedFixer` proposes K refinements per failing transition and puts the true fix
among them with a chosen probability; the other candidates are decoys (another wrong constant,
a precondition removed, an action that does nothing, a patch that hard-codes the value observed
in the failing transition).  Running algorithm 1 (:class:`~cassandra_wm.codewm.refine.Refiner`)
from a faulty model with these proposers measures what the scoring and the validation gate do
when the right answer is on offer; the same faulty models with candidates from an LLM measure
what that LLM contributes.  Everything these controls produce is labelled as such.
"""
from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from typing import Any, Sequence

from .model import CodeFunction, CodeModel, Proposal, Refinement

REFERENCE_LABEL = "reference code model (hand-written from the manual; evaluation control)"


def _args_rule(action: str, spec_args: dict[str, tuple[str, float, float]]) -> str:
    """Source of a precondition checking an action's argument names, types and ranges."""
    lines = [f"def {action}_arguments(state, action):",
             "    args = action.get('args') or {}",
             f"    expected = {sorted(spec_args)!r}",
             "    if sorted(args) != expected:",
             f"        return False, 'arguments must be ' + str(expected)"]
    for name, (typ, lo, hi) in spec_args.items():
        lines += [f"    x = args[{name!r}]",
                  "    if isinstance(x, bool) or not isinstance(x, (int, float)):",
                  f"        return False, '{name} must be a number'",
                  "    if x != x or x in (float('inf'), float('-inf')):",
                  f"        return False, '{name} must be finite'"]
        if typ == "int":
            lines += ["    if x != int(x):", f"        return False, '{name} must be a whole number'"]
        lines += [f"    if x < {lo!r} or x > {hi!r}:", f"        return False, '{name} out of range'"]
    lines.append("    return True, ''")
    return "\n".join(lines) + "\n"


def _rule(name: str, test: str, why: str, arg: str | None = None) -> str:
    """Source of a precondition ``test`` (a boolean expression).  With ``arg``, a malformed value of that
    argument passes here: the arguments rule of the action reports it (every precondition runs)."""
    lines = [f"def {name}(state, action):"]
    if arg:
        lines += [f"    {arg} = (action.get('args') or {{}}).get({arg!r})",
                  f"    if isinstance({arg}, bool) or not isinstance({arg}, (int, float)):",
                  "        return True, ''"]
    lines.append(f"    return {test}, {why!r}")
    return "\n".join(lines) + "\n"


# The coffee shop's rules as the manual states them (see envs/coffee_shop/manual.py).
_COFFEE = {
    # fid: (kind, action, source)
    "act_set_price": ("action", "set_price",
                      "def set_price(state, action):\n"
                      "    return [{'op': 'replace', 'path': '/price', 'value': round(float(action['args']['price']), 2)}]\n"),
    "act_upgrade": ("action", "upgrade",
                    "def upgrade(state, action):\n"
                    "    return [{'op': 'replace', 'path': '/upgrade_level', 'value': state['upgrade_level'] + 1}]\n"),
    "pre_set_price_arguments": ("precondition", "set_price", _args_rule("set_price", {"price": ("float", 1.0, 10.0)})),
    "pre_set_price_step": ("precondition", "set_price",
                           _rule("price_step", "abs(price - state['price']) <= 2.0 + 1e-9",
                                 "the price may move at most 2.00 a day", "price")),
    "pre_buy_beans_arguments": ("precondition", "buy_beans", _args_rule("buy_beans", {"units": ("int", 1, 100)})),
    "pre_buy_beans_cash": ("precondition", "buy_beans",
                           _rule("beans_cash", "units * 5.0 <= state['money'] + 1e-9", "not enough cash", "units")),
    "pre_buy_beans_capacity": ("precondition", "buy_beans",
                               _rule("beans_capacity", "state['coffee_beans'] + units <= 200 + 1e-9", "no room",
                                     "units")),
    "pre_buy_milk_arguments": ("precondition", "buy_milk", _args_rule("buy_milk", {"units": ("int", 1, 100)})),
    "pre_buy_milk_cash": ("precondition", "buy_milk",
                          _rule("milk_cash", "units * 1.2 <= state['money'] + 1e-9", "not enough cash", "units")),
    "pre_buy_milk_capacity": ("precondition", "buy_milk",
                              _rule("milk_capacity", "state['milk'] + units <= 150 + 1e-9", "no room", "units")),
    "pre_upgrade_arguments": ("precondition", "upgrade", _args_rule("upgrade", {})),
    "pre_upgrade_top": ("precondition", "upgrade",
                        _rule("upgrade_top", "state['upgrade_level'] < 5", "already at the top level")),
    "pre_upgrade_cash": ("precondition", "upgrade",
                         _rule("upgrade_cash", "400.0 * (state['upgrade_level'] + 1) <= state['money'] + 1e-9",
                               "not enough cash")),
    "pre_clean_arguments": ("precondition", "clean", _args_rule("clean", {})),
    "pre_clean_cash": ("precondition", "clean", _rule("clean_cash", "30.0 <= state['money'] + 1e-9", "not enough cash")),
    "pre_clean_dirty": ("precondition", "clean", _rule("clean_dirty", "state['cleanliness'] < 95.0", "already clean")),
    "pre_wait_arguments": ("precondition", "wait", _args_rule("wait", {})),
}


def reference_model(env_name: str = "coffee_shop") -> CodeModel:
    """The hand-written reference code model (coffee shop only; an evaluation control)."""
    if env_name != "coffee_shop":
        raise ValueError(f"a reference code model exists for the coffee shop only, not {env_name!r}")
    from .model import function_name_in
    fns = {fid: CodeFunction(fid=fid, kind=k, name=function_name_in(src), source=src, action=a, origin="hand",
                             description="reference rule from the manual")
           for fid, (k, a, src) in _COFFEE.items()}
    return CodeModel(fns, 0, env_name, REFERENCE_LABEL, notes={"source": "reference"})


@dataclass
class Fault:
    """One injected fault: the faulty model and the refinement that undoes it."""

    name: str
    kind: str  # "wrong constant", "missing precondition" or "dropped effect"
    target: str  # the function id involved
    model: CodeModel
    fix: Refinement
    decoy_constants: list[str] = field(default_factory=list)  # wrong values a decoy may use instead

    def describe(self) -> str:
        return f"{self.kind}: {self.name}"


def _with_source(f: CodeFunction, old: str, new: str) -> CodeFunction:
    if old not in f.source:
        raise ValueError(f"{f.fid}: {old!r} not in its source")
    return CodeFunction(fid=f.fid, kind=f.kind, name=f.name, source=f.source.replace(old, new, 1), action=f.action,
                        description=f.description, origin="fault", version=f.version)


# (name, function id, text in the source, wrong text, decoy texts); chosen so that each fault shows
# on some transitions of the heuristic agent's data (a fault no transition shows cannot be repaired)
CONSTANT_FAULTS = [
    ("price step 2.00 read as 3.00", "pre_set_price_step", "2.0 + 1e-9", "3.0 + 1e-9", ["1.0 + 1e-9", "2.5 + 1e-9"]),
    ("bean price 5.00 read as 50.00", "pre_buy_beans_cash", "* 5.0", "* 50.0", ["* 25.0", "* 3.0"]),
    ("bean capacity 200 read as 100", "pre_buy_beans_capacity", "<= 200", "<= 100", ["<= 150", "<= 300"]),
    ("milk capacity 150 read as 120", "pre_buy_milk_capacity", "<= 150", "<= 120", ["<= 100", "<= 180"]),
    ("upgrade cost 400 read as 800", "pre_upgrade_cash", "400.0 *", "800.0 *", ["600.0 *", "200.0 *"]),
    ("cleaning threshold 95 read as 50", "pre_clean_dirty", "< 95.0", "< 50.0", ["< 70.0", "< 99.0"]),
]
MISSING_PRECONDITIONS = ["pre_set_price_step", "pre_buy_beans_arguments", "pre_buy_milk_arguments", "pre_upgrade_cash"]
DROPPED_EFFECTS = [("act_upgrade", "the upgrade does not raise the level"),
                   ("act_set_price", "setting the price changes nothing")]


def inject_faults(model: CodeModel | None = None) -> list[Fault]:
    """The catalogue of single faults of the reference model (12 in all)."""
    ref = model if model is not None else reference_model()
    out: list[Fault] = []
    for name, fid, good, bad, decoys in CONSTANT_FAULTS:
        f = ref.get(fid)
        broken = _with_source(f, good, bad)
        out.append(Fault(name, "wrong constant", fid, ref.with_function(broken),
                         Refinement("replace", target=fid, function=f, note="the true fix"),
                         decoy_constants=[_with_source(f, good, d).source for d in decoys]))
    for fid in MISSING_PRECONDITIONS:
        f = ref.get(fid)
        out.append(Fault(f"precondition {fid} missing", "missing precondition", fid, ref.without(fid),
                         Refinement("add", function=f, note="the true fix")))
    for fid, name in DROPPED_EFFECTS:
        f = ref.get(fid)
        stub = CodeFunction(fid=fid, kind="action", name=f.name, source=f"def {f.name}(state, action):\n    return []\n",
                            action=f.action, origin="fault")
        out.append(Fault(name, "dropped effect", fid, ref.with_function(stub),
                         Refinement("replace", target=fid, function=f, note="the true fix")))
    return out


class ScriptedFixer:
    """A scripted expert proposer for one fault (an evaluation control; it knows the fix).

    Called like :func:`~cassandra_wm.codewm.llm_code.propose_refinements` by the refiner; each call
    returns ``k`` candidates: with probability ``p_fix`` the true fix at a random position, the
    rest decoys.  Seeded per call, so a run is reproducible.
    """

    model = "scripted expert (knows the true fix; evaluation control)"

    def __init__(self, fault: Fault, p_fix: float = 0.8, seed: int = 0):
        if not 0.0 <= p_fix <= 1.0:
            raise ValueError(f"p_fix must be in [0, 1], got {p_fix}")
        self.fault, self.p_fix, self.seed = fault, float(p_fix), int(seed)
        self.calls = 0
        self.offered_fix = 0

    def _decoys(self, model: CodeModel, transition: Any, rng: random.Random) -> list[Refinement]:
        f = self.fault
        out: list[Refinement] = []
        target = model.functions.get(f.target)
        for src in f.decoy_constants:
            if target is not None:
                out.append(Refinement("replace", target=f.target, function=CodeFunction(
                    fid=f.target, kind=target.kind, name=target.name, source=src, action=target.action,
                    origin="decoy"), note="decoy: another wrong constant"))
        act = transition.action.get("name")
        pres = [x for x in model.preconditions(act)] if act else []
        if pres:
            out.append(Refinement("remove", target=rng.choice(pres).fid, note="decoy: drops a rule"))
        det = {k: v for k, v in (transition.next_state or {}).items() if k in ("price", "upgrade_level")}
        if act and det:
            body = ", ".join(f"{{'op': 'replace', 'path': '/{k}', 'value': {v!r}}}" for k, v in det.items())
            fn = CodeFunction(fid="act_fixed_values", kind="action", name="fixed_values",
                              source=f"def fixed_values(state, action):\n    return [{body}]\n", action=act,
                              origin="decoy")
            out.append(Refinement("add", function=fn, note="decoy: hard-codes this transition's values"))
        if act:
            fn = CodeFunction(fid="act_nothing", kind="action", name="nothing",
                              source="def nothing(state, action):\n    return []\n", action=act, origin="decoy")
            out.append(Refinement("add", function=fn, note="decoy: the action does nothing"))
        rng.shuffle(out)
        return out

    def __call__(self, model: CodeModel, transition: Any, result: Any = None, error_type: str | None = None,
                 culprits: Sequence[str] = (), k: int = 3, **_: Any) -> Proposal:
        self.calls += 1
        rng = random.Random(zlib.crc32(f"{self.fault.name}|{self.seed}|{self.calls}".encode()))
        cands = self._decoys(model, transition, rng)[:k]
        if rng.random() < self.p_fix:
            self.offered_fix += 1
            cands = cands[:k - 1]
            cands.insert(rng.randrange(len(cands) + 1), self.fault.fix)
        return Proposal(candidates=cands, notes=[], usage={"prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0},
                        model=self.model)


def _n_wrong(spec, sandbox, model: CodeModel, trs) -> int:
    from .errors import error_type
    res = sandbox.evaluate(model, [(t.state, t.action) for t in trs])
    return sum(error_type(spec, r, t) is not None for r, t in zip(res, trs))


def repair_run(spec, sandbox, fault: Fault, propose, train, val, test, k: int = 3, max_loops: int | None = None,
               progress: bool = False) -> dict:
    """Algorithm 1 from a faulty model with proposer ``propose``; one row saying what happened.

    The reference model predicts every transition right, so a fault shows exactly on the
    transitions the faulty model gets wrong.  ``exposed_train`` / ``exposed_val``: how many training
    and validation transitions show the fault (refinement can only act on a fault the training
    transitions show, and the gate can only accept its fix when V shows it: ``repairable``);
    ``repaired``: after refinement no transition of train, V or test is wrong any more;
    ``fix_accepted``: the true fix was accepted; ``decoys_accepted``: other candidates accepted;
    ``worsened_val``: accepted steps after which fewer V transitions were fully right than before.
    """
    from .refine import Refiner

    exposed_train = _n_wrong(spec, sandbox, fault.model, train)
    exposed_val = _n_wrong(spec, sandbox, fault.model, val)
    wrong_test = _n_wrong(spec, sandbox, fault.model, test)
    refiner = Refiner(spec, sandbox, propose, train, val, k=k, max_loops=max_loops, progress=progress)
    out = refiner.run(fault.model)
    def is_fix(c: dict) -> bool:  # the same edit with the same code (a description alone is not enough)
        return (c.get("op") == fault.fix.op and c.get("source") == fault.fix.function.source
                and (fault.fix.op == "add" or c.get("target") == fault.fix.target))

    accepted = [lp.accepted for lp in out.loops if lp.accepted]
    fix_acc = sum(is_fix(a) for a in accepted)
    offered = sum(any(is_fix(c) for c in lp.candidates) for lp in out.loops)
    worsened = sum(1 for a, b in zip(out.curve, out.curve[1:]) if b["version"] != a["version"]
                   and b["correct"] < a["correct"] - 1e-12)
    left = sum(_n_wrong(spec, sandbox, out.model, trs) for trs in (train, val, test))
    return {"fault": fault.name, "kind": fault.kind, "exposed_train": exposed_train, "exposed_val": exposed_val,
            "wrong_test_before": wrong_test, "repairable": bool(exposed_train and exposed_val),
            "loops": len(out.loops), "candidates": sum(len(lp.candidates) for lp in out.loops),
            "fix_offered": offered, "fix_accepted": fix_acc, "decoys_accepted": len(accepted) - fix_acc,
            "worsened_val": worsened, "wrong_after": left,
            "repaired": bool(left == 0 and (exposed_train + exposed_val + wrong_test) > 0)}


__all__ = ["repair_run", "reference_model", "inject_faults", "Fault", "ScriptedFixer", "REFERENCE_LABEL", "CONSTANT_FAULTS",
           "MISSING_PRECONDITIONS", "DROPPED_EFFECTS"]
