"""Prompts and reply parsing for the code stream: initial phi and refinement proposals.

The prompts follow the structure of the paper's appendix F.1 (a background block with the manual,
state and action specifications; JSON-patch instructions; the three function formats; the
deterministic-variable specification; a JSON output format) in our own wording, kept compact
because the default model is tiny.

* :func:`init_code` asks, per action, for an action function plus its precondition functions,
  then once for the dynamic function.  No transition data is used: the example state in the
  prompt is built from the spec (placeholder values), never from observations.
* :func:`propose_refinements` shows one failing transition, the error type and the functions
  involved, and asks for K refinements (add, remove or replace one function each).

Replies are requested as JSON (with a schema, so backends that support structured output
constrain them).  Every reply is checked and anything unusable is dropped with a logged reason:
no JSON and no code, code fields without a ``def``, unknown actions or function ids, unknown
operations.  Code that does not parse is *kept* (it is what the LLM wrote) and fails in the
sandbox as an E_exec error, which refinement can then replace.  An action whose reply yields no
function at all is recorded in ``CodeModel.empty_actions`` with the reason.
"""
from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..envs.base import EnvSpec, format_action
from ..llm.base import ChatClient, Reply, parse_json_reply
from ._policy import ALLOWED_MODULES, PolicyError, check_source
from .errors import ERROR_MEANING, Transition, true_det
from .model import CodeFunction, CodeModel, Proposal, Refinement, RefinementError, make_function
from .sandbox import ExecResult

log = logging.getLogger(__name__)

# Bumped whenever a prompt changes, so replayed answers to an older wording are not mixed in.
PROMPT_VERSION = "code-v4"
STATE_CHARS = 2500  # cap on a JSON state shown in a prompt
CODE_CHARS = 1200  # cap on one function's source shown in a prompt
MAX_SHOWN = 4  # functions shown in full in a refinement prompt
DESC_CHARS = 400

# -- prompt pieces ---------------------------------------------------------------------------

PATCH_GUIDE = """JSON PATCH (RFC 6902): a Python list of dicts, e.g.
[{"op": "replace", "path": "/price", "value": 4.5}]. "op" is "replace" (set a value), "add" (create a
value; "/items/-" appends to a list) or "remove". "path" is a JSON pointer: "/" then the keys from the
root, list positions as numbers. Compute values in Python first. [] means no change."""

FORMATS = """FUNCTIONS (plain Python, no classes; allowed imports: """ + ", ".join(sorted(ALLOWED_MODULES)) + """):
- action: def <name>(state, action): return <patch>  # what the action itself changes; may assume its preconditions hold
- precondition: def <name>(state, action): return (ok, feedback)  # ok is True/False for ONE rule; feedback says why it failed
- dynamic: def <name>(state): return <patch>  # change that happens every step whatever the action
state is the state dict; action is {"name": <action name>, "args": {<argument>: <value>}}."""

ORDER = ("To predict a step: check every precondition of the action; if all pass, apply the action's patch; "
         "then apply the dynamic patch in any case.")

CHARS_PER_TOKEN = 3.5  # rough size of a token of English/code for budgeting prompts
VAR_DESC_CHARS = 140


def example_state(spec: EnvSpec) -> dict:
    """A state with every declared variable at a placeholder value (its lower bound, first category or 0).

    Built from the spec alone, so code initialisation sees the shape of a state without any data.
    """
    state: dict = {}
    for v in spec.variables:
        if v.type == "categorical":
            val: Any = v.categories[0] if v.categories else ""
        else:
            val = v.low if v.low is not None else 0
            if v.integer and isinstance(val, float):
                val = int(val)
        toks = [t for t in v.path.split("/")[1:]]
        cur = state
        for tok in toks[:-1]:
            cur = cur.setdefault(tok, {})
        if toks:
            cur[toks[-1]] = val
    return state


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + " ...(cut)"


def _json(obj: Any, n: int = STATE_CHARS) -> str:
    return _clip(json.dumps(obj, default=str, sort_keys=True), n)


def _num(x: Any) -> str:
    return "inf" if x is None else f"{x:g}" if isinstance(x, float) else str(x)


def describe_variables(spec: EnvSpec, desc_chars: int = VAR_DESC_CHARS) -> str:
    """One compact line per variable: name, kind, type and range, JSON pointer, shortened meaning."""
    lines = []
    for v in spec.variables:
        if v.type == "categorical":
            rng = f"one of {list(v.categories)}" if v.categories else "categorical"
        else:
            rng = ("integer" if v.integer else "number") + (
                f" in [{_num(v.low) if v.low is not None else '-inf'}, {_num(v.high)}]"
                if v.low is not None or v.high is not None else "")
        lines.append(f"- {v.name} ({v.kind}, {rng}, at {v.path}): {_clip(v.description.strip(), desc_chars)}")
    return "\n".join(lines)


def background(spec: EnvSpec, state_example: dict | None = None, manual: str | None = None,
               desc_chars: int = VAR_DESC_CHARS) -> str:
    """Manual, variables, actions (and the state's shape when it is nested): the opening of every prompt."""
    text = (manual if manual is not None else spec.manual).strip()
    out = (f"ENVIRONMENT {spec.name}. Manual:\n{text}\n\n"
           f"STATE VARIABLES:\n{describe_variables(spec, desc_chars)}\n")
    nested = any(v.path.count("/") > 1 for v in spec.variables)
    if state_example is not None or nested:
        ex = state_example if state_example is not None else example_state(spec)
        out += f"State shape (placeholder values): {_json(ex)}\n"
    return out + f"\nACTIONS:\n{spec.describe_actions()}"


def det_spec(spec: EnvSpec) -> str:
    paths = ", ".join(f"{v.path} ({v.name})" for v in spec.deterministic)
    return f"The functions may change ONLY these deterministic variables: {paths}. Everything else is read-only."


def estimate_tokens(messages: list[dict]) -> int:
    return int(sum(len(m["content"]) for m in messages) / CHARS_PER_TOKEN) + 8 * len(messages)


def _relevance(paragraph: str, spec: EnvSpec) -> int:
    """How often a manual paragraph mentions actions or deterministic variables."""
    text = paragraph.lower()
    words = {a.name for a in spec.actions} | {v.name for v in spec.deterministic}
    words |= {w.replace("_", " ") for w in words}
    return sum(text.count(w.lower()) for w in words)


def shorten_manual(spec: EnvSpec, max_chars: int) -> str:
    """The manual within ``max_chars``: paragraphs that mention actions and deterministic variables
    least are left out first (order kept); a hard cut is the last resort."""
    manual = spec.manual.strip()
    if len(manual) <= max_chars:
        return manual
    note = "\n[Parts of the manual were left out to fit the model's context.]"
    paras = [p for p in manual.split("\n\n") if p.strip()]
    keep = list(range(len(paras)))
    ranked = sorted(keep, key=lambda i: (_relevance(paras[i], spec), -len(paras[i])))
    for i in ranked:
        if len("\n\n".join(paras[j] for j in keep)) + len(note) <= max_chars or len(keep) == 1:
            break
        keep.remove(i)
    text = "\n\n".join(paras[j] for j in keep)
    if len(text) + len(note) > max_chars:
        text = text[:max(200, max_chars - len(note))].rsplit(" ", 1)[0] + " ..."
    return text + note


SHORT_DESC_CHARS = 40


def fit_messages(build, spec: EnvSpec, budget_tokens: int | None) -> tuple[list[dict], str | None]:
    """Messages from ``build(manual, desc_chars)`` within ``budget_tokens``.

    The manual is shortened first (least relevant paragraphs out); if that is not enough, the
    variable descriptions are cut to a few words as well.  Returns the messages and a note saying
    what was shortened (None when nothing was).  Without a budget the full text is used; when even
    the shortest version is over budget it is returned anyway and the note says so.
    """
    msgs = build(None, VAR_DESC_CHARS)
    if budget_tokens is None:
        return msgs, None
    over = estimate_tokens(msgs) - budget_tokens
    if over <= 0:
        return msgs, None
    note = ""
    for desc in (VAR_DESC_CHARS, SHORT_DESC_CHARS):
        base = build(None, desc)
        over = estimate_tokens(base) - budget_tokens
        target = max(300, len(spec.manual) - int(over * CHARS_PER_TOKEN))
        manual = shorten_manual(spec, target) if over > 0 else None
        msgs = build(manual, desc)
        note = (f"manual shortened to {len(manual)} of {len(spec.manual)} characters" if manual else "full manual") + (
            f", variable descriptions cut to {desc} characters" if desc != VAR_DESC_CHARS else "")
        if estimate_tokens(msgs) <= budget_tokens:
            return msgs, note + f" to fit {budget_tokens} prompt tokens"
    return msgs, note + (f"; still about {estimate_tokens(msgs)} tokens, over the budget of {budget_tokens}: "
                         "use a model with a larger context")


def prompt_budget(chat: ChatClient, max_tokens: int, context_tokens: int | None = None) -> int | None:
    """Prompt tokens available: the context size (given, or the client's ``context_tokens``/``n_ctx``
    attribute) minus the reply's ``max_tokens`` and a small margin; None when the size is unknown."""
    ctx = context_tokens or getattr(chat, "context_tokens", None) or getattr(chat, "n_ctx", None)
    if not ctx:
        return None
    return max(256, int(ctx) - int(max_tokens) - 48)


# -- output schemas --------------------------------------------------------------------------

_STR = {"type": "string"}
INIT_ACTION_SCHEMA = {
    "type": "object",
    "properties": {
        "action_name": _STR, "action_description": _STR, "code": _STR,
        "preconditions": {"type": "array", "items": {
            "type": "object", "properties": {"precondition_description": _STR, "code": _STR},
            "required": ["precondition_description", "code"]}},
    },
    "required": ["action_name", "action_description", "code", "preconditions"],
}
INIT_DYNAMIC_SCHEMA = {
    "type": "object", "properties": {"dynamic_description": _STR, "code": _STR},
    "required": ["dynamic_description", "code"],
}
REFINE_SCHEMA = {
    "type": "object",
    "properties": {"refinements": {"type": "array", "items": {
        "type": "object",
        "properties": {"operation": {"type": "string", "enum": ["add", "remove", "replace"]},
                       "function_id": _STR,
                       "kind": {"type": "string", "enum": ["action", "precondition", "dynamic"]},
                       "action": _STR, "description": _STR, "code": _STR},
        "required": ["operation", "function_id", "kind", "action", "description", "code"]}}},
    "required": ["refinements"],
}


def init_action_messages(spec: EnvSpec, action: str, state_example: dict | None = None,
                         manual: str | None = None, desc_chars: int = VAR_DESC_CHARS) -> list[dict]:
    """Messages asking for one action's action function and precondition functions."""
    a = spec.action(action)
    system = (
        "You write a world model: Python functions that predict how the state of an environment changes.\n\n"
        f"{background(spec, state_example, manual, desc_chars)}\n\n{det_spec(spec)}\n\n{PATCH_GUIDE}\n\n{FORMATS}\n{ORDER}\n"
        "The action function holds only the direct effect of the action (day-to-day change belongs to the "
        "dynamic function). Write one precondition per rule the manual gives for this action (argument "
        "limits, affordability, capacities, maximum levels), general enough for any state.\n\n"
        "Reply with one JSON object shaped like this (replace every ... by real content):\n"
        + json.dumps({"action_name": a.name, "action_description": "...",
                      "code": f"def {a.name}(state, action):\n    ...\n    return [...]",
                      "preconditions": [{"precondition_description": "...",
                                         "code": "def rule_name(state, action):\n    ok = ...\n    return ok, \"...\""}]}))
    args = ", ".join(f"{x.name}: {x.type}" + (f" in [{x.low}, {x.high}]" if x.low is not None or x.high is not None else "")
                     for x in a.args)
    user = f"Write the action function and the preconditions of {a.name}({args}): {a.description}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def init_dynamic_messages(spec: EnvSpec, state_example: dict | None = None, manual: str | None = None,
                          desc_chars: int = VAR_DESC_CHARS) -> list[dict]:
    """Messages asking for the dynamic function."""
    system = (
        "You write a world model: Python functions that predict how the state of an environment changes.\n\n"
        f"{background(spec, state_example, manual, desc_chars)}\n\n{det_spec(spec)}\n\n{PATCH_GUIDE}\n\n{FORMATS}\n{ORDER}\n"
        "The dynamic function gathers every change to the deterministic variables that happens by itself each "
        "step, whatever the action. If they never change by themselves, it returns [].\n\n"
        "Reply with one JSON object shaped like this (replace every ... by real content):\n"
        + json.dumps({"dynamic_description": "...", "code": "def dynamic(state):\n    ...\n    return [...]"}))
    user = "Write the dynamic function for the deterministic variables above."
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _show_function(f: CodeFunction, code_chars: int = CODE_CHARS) -> str:
    owner = f" of action {f.action}" if f.action else ""
    desc = f"\ndescription: {_clip(f.description.strip(), min(DESC_CHARS, code_chars // 3))}" if f.description.strip() else ""
    return f"function_id: {f.fid} ({f.kind}{owner}){desc}\n```python\n{_clip(f.source.rstrip(), code_chars)}\n```"


def refine_messages(spec: EnvSpec, model: CodeModel, tr: Transition, result: ExecResult, error_type: str,
                    culprits: Sequence[str], k: int = 3, state_example: dict | None = None,
                    manual: str | None = None, code_chars: int = CODE_CHARS,
                    desc_chars: int = VAR_DESC_CHARS) -> list[dict]:
    """Messages asking for ``k`` refinements after phi got transition ``tr`` wrong.

    The output example names the first function involved (its id, kind and action), so that a
    model which copies the example still refers to a real function.
    """
    shown = [model.functions[f] for f in culprits if f in model.functions][:MAX_SHOWN]
    first = shown[0] if shown else None
    example = {"operation": "replace" if first else "add", "function_id": first.fid if first else "",
               "kind": first.kind if first else ("precondition" if error_type in ("E_pf", "E_ps") else "action"),
               "action": (first.action or "") if first else tr.action.get("name", ""),
               "description": "...",
               "code": (f"def {first.name if first else 'rule_name'}("
                        + ("state" if first is not None and first.kind == "dynamic" else "state, action")
                        + "):\n    ...\n    return ...")}
    system = (
        "You improve a world model: Python functions that predict how the state of an environment changes.\n\n"
        f"{background(spec, state_example, manual, desc_chars)}\n\n{det_spec(spec)}\n\n{PATCH_GUIDE}\n\n{FORMATS}\n{ORDER}\n\n"
        "You see one step the functions got wrong, the error type and the functions involved. Find the "
        "mistake, then propose refinements; each one does exactly one thing:\n"
        "- add: a new function (kind; action, unless dynamic; description; code)\n"
        "- remove: an existing function (its function_id)\n"
        "- replace: an existing function by new code (its function_id; description; code)\n"
        "Each action has one action function and the model one dynamic function; preconditions may be many, "
        "one rule each. Use function_ids exactly as shown. The manual holds every rule you need.\n\n"
        "Reply with one JSON object shaped like this (replace every ... by real content):\n"
        + json.dumps({"refinements": [example]}))
    aname = tr.action.get("name", "?")
    try:
        atext = format_action(tr.action)
    except Exception:
        atext = str(tr.action)
    lines = [f"Error type: {error_type}: {ERROR_MEANING.get(error_type, '')}.", "", "The step:",
             f"state before: {_json(tr.state)}", f"action: {atext}",
             "observed: the action " + ("was carried out" if tr.valid else
                                       f"was refused ({tr.error})" if tr.error else "was refused"),
             "predicted: the action " + ("would be carried out" if result.valid else
                                        "would be refused by " + ", ".join(result.failed or ["a precondition"]))]
    if result.feedback:
        lines.append("precondition feedback: " + "; ".join(_clip(x, 200) for x in result.feedback[:5]))
    truth = true_det(spec, tr.next_state)
    pred = {n: ("<removed>" if n in result.missing else v) for n, v in result.det.items()}
    lines += [f"observed deterministic values after the step: {_json(truth)}",
              f"predicted deterministic values after the step: {_json(pred)}"]
    if result.errors:
        lines.append("execution errors:")
        lines += [f"- {fid}: {_clip(msg, 300)}" for fid, msg in result.errors[:6]]
    lines += ["", "Functions involved:" if shown else
              f"Functions involved: none (phi has no function for this case; action {aname!r})."]
    lines += [_show_function(f, code_chars) for f in shown]
    others = [f.fid for f in model.for_action(aname) if f.fid not in {g.fid for g in shown}]
    if others:
        lines.append("Other functions used for this action: " + ", ".join(others))
    lines += ["", f"Propose {k} refinement{'s' if k != 1 else ''} that would fix this error without "
                  "breaking other steps."]
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]


# -- reply parsing ---------------------------------------------------------------------------

_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)
_CODE_FIELD = re.compile(r'"code"\s*:\s*"((?:[^"\\]|\\.)*)"', re.S)


def clean_code(code: Any) -> str:
    """Normalise a code field: strip fences and tags, undo double-escaped newlines, dedent."""
    if not isinstance(code, str):
        return ""
    import textwrap

    s = code
    m = _FENCE.search(s)
    if m:
        s = m.group(1)
    s = re.sub(r"^\s*</?code>[ \t]*\n?|\n?\s*</?code>\s*$", "", s.strip("\n"))
    s = s.strip("`").strip("\n")
    if s.startswith("python\n"):
        s = s[len("python\n"):]
    if "\n" not in s and "\\n" in s:
        s = s.replace("\\n", "\n").replace("\\t", "    ").replace('\\"', '"')
    s = textwrap.dedent(s.rstrip()).strip("\n")
    return s + "\n" if s.strip() else ""


def lenient_json(text: str) -> Any:
    """The first JSON object in ``text``, accepting raw newlines and tabs inside strings (small
    models often write code into JSON strings without escaping them); None when there is none."""
    s = (text or "").strip()
    start = s.find("{")
    if start < 0:
        return None
    try:
        obj, _ = json.JSONDecoder(strict=False).raw_decode(s[start:])
        return obj
    except ValueError:
        return None


def reply_object(reply: Reply) -> tuple[Any, str | None]:
    """The JSON object of a reply (parsed by the backend or here), or (None, reason)."""
    if isinstance(reply.parsed, (dict, list)):
        return reply.parsed, None
    obj, err = parse_json_reply(reply.text or "")
    if obj is None:
        obj = lenient_json(reply.text or "")
    if obj is None:
        return None, reply.parse_error or err or "no JSON in reply"
    return obj, None


def salvage_code(text: str) -> list[str]:
    """Complete ``"code": "..."`` strings of a truncated JSON reply, else fenced Python blocks."""
    out = []
    dec = json.JSONDecoder(strict=False)
    for m in _CODE_FIELD.finditer(text or ""):
        try:
            out.append(dec.decode('"' + m.group(1) + '"'))
        except ValueError:
            continue
    if not out:
        out = [m.group(1) for m in _FENCE.finditer(text or "")]
    return [c for c in (clean_code(x) for x in out) if c]


def _looks_like_precondition(code: str) -> bool:
    return bool(re.search(r"return\s*\(?\s*(True|False|not\b|[^,\n]+,\s*['\"f])", code))


def _usable(code: str) -> str | None:
    """Why ``code`` cannot become a function (None when it can; parse errors are allowed)."""
    if not code.strip():
        return "empty code"
    if not re.search(r"\bdef\s+[A-Za-z_]\w*\s*\(", code):
        return "code has no function definition"
    return None


def _static_note(code: str, kind: str) -> str:
    from .model import function_name_in
    try:
        check_source(code, function_name_in(code), kind)
        return ""
    except PolicyError as e:
        return f"will fail in the sandbox: {e}"


@dataclass
class InitResult:
    """The initial phi, a log entry per LLM call, and total token/time usage."""

    model: CodeModel
    log: list[dict] = field(default_factory=list)
    usage: dict = field(default_factory=dict)


def _usage(reply: Reply | None, seconds: float) -> dict:
    u = dict(reply.usage) if reply is not None and reply.usage else {}
    return {"prompt_tokens": int(u.get("prompt_tokens") or 0),
            "completion_tokens": int(u.get("completion_tokens") or 0),
            "seconds": float(u.get("seconds") if u.get("seconds") is not None else seconds)}


NO_REPEAT_PENALTY = 1.0  # repetition penalty for code calls: 1.0 = none


def _sampling_kwargs(chat: ChatClient) -> dict:
    """Code calls ask for no repetition penalty where the chat client can pass one.

    llama.cpp's server applies ``repeat_penalty`` 1.1 by default, even at temperature 0, and code
    repeats tokens by nature (indentation, names, brackets): the penalty makes syntax errors more
    frequent.  The chat interface takes ``repeat_penalty`` once the LLM layer supports it (the backend
    maps it to its own request field and the cache key includes it); until then nothing is passed.
    """
    import inspect
    try:
        params = inspect.signature(chat.chat).parameters
    except (TypeError, ValueError):
        return {}
    return {"repeat_penalty": NO_REPEAT_PENALTY} if "repeat_penalty" in params else {}


def _chat(chat: ChatClient, messages, schema, max_tokens, temperature, seed, stage, sample_index=0):
    t0 = time.perf_counter()
    try:
        reply = chat.chat(messages, schema=schema, temperature=temperature, seed=seed, max_tokens=max_tokens,
                          sample_index=sample_index, stage=stage, **_sampling_kwargs(chat))
        return reply, None, time.perf_counter() - t0
    except Exception as e:  # a failed call is logged and costs this part of phi only
        return None, f"chat call failed: {type(e).__name__}: {e}", time.perf_counter() - t0


def parse_action_reply(reply: Reply, action: str, model: CodeModel) -> tuple[list[CodeFunction], list[str]]:
    """Functions from an initialisation reply for ``action`` and the reasons for anything dropped."""
    notes: list[str] = []
    obj, err = reply_object(reply)
    pieces: list[tuple[str, str, str]] = []  # (kind, code, description)
    if isinstance(obj, dict):
        named = obj.get("action_name")
        if isinstance(named, str) and named.strip() and named.strip() != action:
            notes.append(f"reply names action {named!r}; used for {action!r} anyway")
        pieces.append(("action", clean_code(obj.get("code")), str(obj.get("action_description") or "")))
        pres = obj.get("preconditions")
        if pres is None:
            pres = []
        if not isinstance(pres, list):
            notes.append(f"'preconditions' is a {type(pres).__name__}, not a list; ignored")
            pres = []
        for p in pres:
            if isinstance(p, dict):
                pieces.append(("precondition", clean_code(p.get("code")),
                               str(p.get("precondition_description") or p.get("description") or "")))
            elif isinstance(p, str):
                pieces.append(("precondition", clean_code(p), ""))
    else:
        codes = salvage_code(reply.text)
        notes.append(f"reply is not a JSON object ({err}); salvaged {len(codes)} code block(s) from the text")
        for i, c in enumerate(codes):
            pieces.append(("precondition" if (i > 0 or _looks_like_precondition(c)) else "action", c, ""))
    fns: list[CodeFunction] = []
    cur = model
    for kind, code, desc in pieces:
        why = _usable(code)
        if why:
            notes.append(f"{kind} function dropped: {why}")
            continue
        if kind == "action" and any(f.kind == "action" for f in fns):
            kind = "precondition"
        f = make_function(kind, action, code, cur, description=desc[:DESC_CHARS * 2], origin="llm")
        note = _static_note(code, kind)
        if note:
            notes.append(f"{f.fid}: {note}")
        fns.append(f)
        cur = cur.with_function(f)
    return fns, notes


def parse_dynamic_reply(reply: Reply, model: CodeModel) -> tuple[list[CodeFunction], list[str]]:
    notes: list[str] = []
    obj, err = reply_object(reply)
    if isinstance(obj, dict):
        code, desc = clean_code(obj.get("code")), str(obj.get("dynamic_description") or "")
    else:
        codes = salvage_code(reply.text)
        notes.append(f"reply is not a JSON object ({err}); salvaged {len(codes)} code block(s) from the text")
        code, desc = (codes[0] if codes else ""), ""
    why = _usable(code)
    if why:
        notes.append(f"dynamic function dropped: {why}")
        return [], notes
    f = make_function("dynamic", None, code, model, description=desc[:DESC_CHARS * 2], origin="llm", fid="dyn")
    note = _static_note(code, "dynamic")
    if note:
        notes.append(f"{f.fid}: {note}")
    return [f], notes


def init_code(chat: ChatClient, spec: EnvSpec, actions: Sequence[str] | None = None,
              state_example: dict | None = None, max_tokens: int = 512, temperature: float = 0.0,
              seed: int | None = 0, stage: str | None = "02_code_init", progress: bool = True,
              context_tokens: int | None = None) -> InitResult:
    """Initial phi from the manual and the specs alone: one call per action, one for the dynamic function.

    ``context_tokens`` (or the client's ``context_tokens`` attribute) bounds the prompt: the manual
    is shortened to fit, and the log says so.  Never raises because of a bad reply: each part that
    yields nothing is recorded in ``model.empty_actions`` (or the log, for the dynamic function)
    with the reason.
    """
    from tqdm.auto import tqdm

    names = list(actions) if actions is not None else [a.name for a in spec.actions]
    for n in names:
        spec.action(n)  # unknown names fail loudly here
    model = CodeModel(env_name=spec.name, llm=getattr(chat, "model", "unknown"),
                      notes={"prompt_version": PROMPT_VERSION, "source": "init"})
    entries: list[dict] = []
    total = {"prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0, "calls": 0}
    parts = [("action", n) for n in names] + [("dynamic", None)]
    budget = prompt_budget(chat, max_tokens, context_tokens)
    for kind, name in tqdm(parts, desc="initial code", disable=not progress):
        if kind == "action":
            msgs, cut = fit_messages(lambda man, dc: init_action_messages(spec, name, state_example, man, dc),
                                     spec, budget)
            schema = INIT_ACTION_SCHEMA
        else:
            msgs, cut = fit_messages(lambda man, dc: init_dynamic_messages(spec, state_example, man, dc), spec, budget)
            schema = INIT_DYNAMIC_SCHEMA
        reply, fail, secs = _chat(chat, msgs, schema, max_tokens, temperature, seed, stage)
        use = _usage(reply, secs)
        for k2 in ("prompt_tokens", "completion_tokens", "seconds"):
            total[k2] += use[k2]
        total["calls"] += 1
        if reply is None:
            fns, notes = [], [fail]
        elif kind == "action":
            fns, notes = parse_action_reply(reply, name, model)
        else:
            fns, notes = parse_dynamic_reply(reply, model)
        if cut:
            notes.append(cut)
        for f in fns:
            model = model.with_function(f)
        if not fns:
            reason = "; ".join(notes) or "no usable function in the reply"
            if kind == "action":
                model.empty_actions[name] = reason
            log.info("initial code for %s: nothing usable (%s)", name or "dynamic", reason)
        entries.append({"part": name or "dynamic", "kind": kind, "functions": [f.fid for f in fns],
                        "notes": notes, **use,
                        "reply_excerpt": _clip(reply.text if reply is not None else "", 600)})
    model.notes["init_usage"] = total
    return InitResult(model=model, log=entries, usage=total)


_OP_WORDS = {"add": "add", "new": "add", "create": "add", "insert": "add", "remove": "remove",
             "delete": "remove", "drop": "remove", "replace": "replace", "modify": "replace",
             "update": "replace", "fix": "replace", "change": "replace", "edit": "replace"}


def _kind_word(x: Any) -> str | None:
    s = str(x or "").lower()
    if "pre" in s or "condition" in s:
        return "precondition"
    if "dyn" in s:
        return "dynamic"
    if "act" in s:
        return "action"
    return None


def _default_kind(error_type: str, tr: Transition, model: CodeModel, culprits: Sequence[str]) -> str:
    if error_type in ("E_pf", "E_ps"):
        return "precondition"
    if error_type == "E_exec" and culprits and culprits[0] in model.functions:
        return model.functions[culprits[0]].kind
    return "action" if tr.valid else "dynamic"


def parse_refinements(reply: Reply, spec: EnvSpec, model: CodeModel, tr: Transition, error_type: str,
                      culprits: Sequence[str] = (), k: int = 3) -> tuple[list[Refinement], list[str]]:
    """Refinements from a reply, at most ``k``, and the reasons for every item dropped."""
    notes: list[str] = []
    obj, err = reply_object(reply)
    items: list = []
    if isinstance(obj, dict):
        items = obj.get("refinements")
        if items is None and ("operation" in obj or "op" in obj):
            items = [obj]
        if not isinstance(items, list):
            notes.append("reply has no 'refinements' list")
            items = []
    elif isinstance(obj, list):
        items = obj
    else:
        codes = salvage_code(reply.text)
        notes.append(f"reply is not JSON ({err}); salvaged {len(codes)} code block(s) as 'add' refinements")
        items = [{"operation": "add", "code": c} for c in codes]
    action_names = {a.name for a in spec.actions}
    cur_action = tr.action.get("name")
    out: list[Refinement] = []
    for n, it in enumerate(items):
        if len(out) >= k:
            notes.append(f"only the first {k} usable refinements kept")
            break
        if not isinstance(it, dict):
            notes.append(f"item {n}: not an object ({type(it).__name__})")
            continue
        op = _OP_WORDS.get(str(it.get("operation") or it.get("op") or it.get("type") or "").strip().lower())
        if op is None:
            notes.append(f"item {n}: unknown operation {it.get('operation') or it.get('op')!r}")
            continue
        fid = str(it.get("function_id") or it.get("id") or it.get("target") or "").strip()
        note = ""
        if op in ("remove", "replace") and fid not in model.functions:
            same = [c for c in culprits if c in model.functions]
            if op == "replace" and len(same) == 1:
                note = f"unknown function_id {fid!r} read as {same[0]!r}, the only function involved"
                fid = same[0]
            elif op == "replace" and not fid:
                op, note = "add", "replace without a function_id read as add"
            else:
                notes.append(f"item {n}: {op} of unknown function {fid!r}")
                continue
        if op == "remove":
            out.append(Refinement("remove", target=fid, note=note))
            continue
        code = clean_code(it.get("code"))
        why = _usable(code)
        if why:
            notes.append(f"item {n} ({op}): {why}")
            continue
        target = model.functions.get(fid) if op == "replace" else None
        kind = _kind_word(it.get("kind") or it.get("function_type")) or (target.kind if target else None) \
            or _default_kind(error_type, tr, model, culprits)
        act = str(it.get("action") or it.get("action_name") or "").strip() or None
        if kind == "dynamic":
            act = None
        else:
            if act is None:
                act = target.action if target is not None and target.action else cur_action
            if act not in action_names:
                notes.append(f"item {n}: unknown action {act!r}")
                continue
        try:
            f = make_function(kind, act, code, model, description=str(it.get("description") or "")[:DESC_CHARS * 2],
                              origin="llm")
            out.append(Refinement(op, target=fid if op == "replace" else None, function=f, note=note))
        except (ValueError, RefinementError) as e:
            notes.append(f"item {n}: {e}")
            continue
        static = _static_note(code, kind)
        if static:
            out[-1].note = "; ".join(x for x in (out[-1].note, static) if x)
    if not out and not notes:
        notes.append("reply held no refinements")
    return out, notes


def propose_refinements(chat: ChatClient, spec: EnvSpec, model: CodeModel, transition: Transition,
                        result: ExecResult, error_type: str, culprits: Sequence[str] = (), k: int = 3,
                        state_example: dict | None = None, max_tokens: int = 600, temperature: float = 0.0,
                        seed: int | None = 0, sample_index: int = 0, stage: str | None = "02_code_refine",
                        context_tokens: int | None = None) -> Proposal:
    """Ask for ``k`` refinements of ``model`` after it got ``transition`` wrong (one chat call).

    ``context_tokens`` bounds the prompt as in :func:`init_code`.
    """
    budget = prompt_budget(chat, max_tokens, context_tokens)
    for code_chars in (CODE_CHARS, 600, 300):  # shorten the code shown before the manual
        build = (lambda man, dc, cc=code_chars: refine_messages(spec, model, transition, result, error_type,
                                                                culprits, k, state_example, man, cc, dc))
        if budget is None or estimate_tokens(build(None, VAR_DESC_CHARS)) <= budget:
            break
    msgs, cut = fit_messages(build, spec, budget)
    reply, fail, secs = _chat(chat, msgs, REFINE_SCHEMA, max_tokens, temperature, seed, stage, sample_index)
    use = _usage(reply, secs)
    if reply is None:
        return Proposal(notes=[fail] + ([cut] if cut else []), usage=use, model=getattr(chat, "model", ""))
    cands, notes = parse_refinements(reply, spec, model, transition, error_type, culprits, k)
    if cut:
        notes.append(cut)
    return Proposal(candidates=cands, notes=notes, usage=use, reply_text=_clip(reply.text or "", 4000),
                    model=reply.model or getattr(chat, "model", ""))


__all__ = ["PROMPT_VERSION", "init_code", "propose_refinements", "InitResult", "example_state", "background",
           "init_action_messages", "init_dynamic_messages", "refine_messages", "parse_action_reply",
           "parse_dynamic_reply", "parse_refinements", "clean_code", "salvage_code",
           "INIT_ACTION_SCHEMA", "INIT_DYNAMIC_SCHEMA", "REFINE_SCHEMA"]
