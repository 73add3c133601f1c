"""Check an endpoint before trusting it: what it serves, its context, JSON output and log-probabilities.

``check_endpoint(llm)`` asks the server for its model list (and, where it says, its context size),
then sends one short probe asking for a JSON object with token log-probabilities.  The returned
:class:`EndpointReport` holds what the server reports as its model id (``report.label`` prints it
beside the name asked for), the context size, whether JSON output works and how, and whether
log-probabilities come back.  ``report.require(stages)`` raises :class:`EndpointError` naming what
is missing for which stage (:data:`STAGE_NEEDS`).  In replay mode nothing is contacted: the report
says where the recorded answers came from.
"""
from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit, urlunsplit

from .base import LLMError, UnusableReply, llm_label
from .usage import CHECK_STAGE

# What each stage asks of an endpoint.  Context sizes: the longest prompt plus reply measured with
# SmolLM2's tokenizer (coffee shop: 2,530 tokens in 02 and 2,771 in the theme park's 03; the park's
# code prompts are about 4,000 tokens plus a 768-token reply), rounded up; other tokenizers differ a little.
STAGE_NEEDS: dict[str, dict] = {
    "00_environment": {"logprobs": 2, "why": "the smoke test shows the first tokens' log-probabilities"},
    "02_code_init_refine": {"json": True, "context": 4096, "why": "code and refinements come back as JSON"},
    "02_code_init_refine_theme_park": {"json": True, "context": 8192,
                                       "why": "the park's code prompts are about 4,000 tokens"},
    "03_dag_sampling_search": {"json": True, "logprobs": 20, "context": 4096,
                               "why": "DAG answers are JSON; the structure prior reads p(yes) from the top "
                                      "log-probabilities of the answer token"},
    "03_dag_sampling_search_theme_park": {"json": True, "logprobs": 20, "context": 4096,
                                          "why": "as 03_dag_sampling_search, with longer prompts"},
}

PROBE_SCHEMA = {"type": "object", "properties": {"answer": {"type": "boolean"}}, "required": ["answer"],
                "additionalProperties": False}
PROBE_MESSAGES = [
    {"role": "system", "content": "You reply with JSON only."},
    {"role": "user", "content": 'Is ice colder than steam? Reply with {"answer": true} or {"answer": false}.'},
]


class EndpointError(LLMError):
    """The endpoint lacks something the chosen stages need."""


def needs_of(stage: str) -> dict:
    """What ``stage`` needs (exact name, else the longest name it starts with; {} for stages without LLM)."""
    if stage in STAGE_NEEDS:
        return STAGE_NEEDS[stage]
    best = max((k for k in STAGE_NEEDS if stage.startswith(k)), key=len, default=None)
    return STAGE_NEEDS[best] if best else {}


@dataclass
class EndpointReport:
    """What :func:`check_endpoint` found; ``None`` means not known (not checked, or the server did not say)."""

    spec: str
    kind: str
    model: str
    endpoint: str
    base_url: str = ""
    reachable: bool | None = None
    served_models: list[str] | None = None
    reported_model: str | None = None
    context_tokens: int | None = None
    context_source: str = ""
    json_output: bool | None = None
    schema_mode: str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The model asked for, plus the id the server reports when that differs."""
        return llm_label(self.model, self.reported_model)

    def to_dict(self) -> dict:
        return {**asdict(self), "label": self.label}

    def missing(self, stages=None) -> list[str]:
        """What the ``stages`` (names; default: every stage that uses an LLM) need and this endpoint lacks."""
        if self.kind == "replay":
            return []
        stages = list(STAGE_NEEDS) if stages is None else list(stages)
        out = []
        for st in stages:
            need = needs_of(st)
            if not need:
                continue
            if self.reachable is False:
                out.append(f"{st}: the endpoint does not answer")
                continue
            if need.get("json") and self.json_output is False:
                out.append(f"{st} needs JSON output (response_format json_schema, or JSON mode); the probe got none "
                           f"({need['why']})")
            if need.get("logprobs") and self.logprobs is False:
                out.append(f"{st} needs token log-probabilities with top_logprobs={need['logprobs']}; the endpoint "
                           f"returns none ({need['why']})")
            if need.get("context") and self.context_tokens is not None and self.context_tokens < need["context"]:
                out.append(f"{st} needs a context of at least {need['context']} tokens; the endpoint has "
                           f"{self.context_tokens} ({self.context_source})")
        return out

    def require(self, stages=None) -> "EndpointReport":
        """Raise :class:`EndpointError` listing :meth:`missing` when anything is; else return self."""
        miss = self.missing(stages)
        if miss:
            raise EndpointError(f"the LLM endpoint {self.base_url or self.endpoint} (model {self.label}) cannot "
                                "serve these stages:\n  - " + "\n  - ".join(miss) +
                                "\nSee the README's 'LLMs' section for what an endpoint must support.")
        return self

    def lines(self) -> list[str]:
        """A short human-readable account, one fact per line."""
        def known(v, fmt=str):
            return "not known" if v is None else fmt(v)
        out = [f"LLM: {self.label} (spec {self.spec!r}, endpoint {self.endpoint})"]
        if self.kind == "replay":
            out.append("replay: nothing contacted; answers come from the record/replay cache")
        else:
            out += [f"server lists: {', '.join(self.served_models[:10]) if self.served_models else 'nothing'}",
                    f"context: {known(self.context_tokens)} tokens ({self.context_source or 'not reported'})",
                    f"JSON output: {known(self.json_output, lambda v: ('yes, ' + str(self.schema_mode)) if v else 'no')}",
                    f"log-probabilities: {known(self.logprobs, lambda v: f'yes, {self.top_logprobs} alternatives' if v else 'no')}"]
        out += [f"note: {n}" for n in self.notes]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _get_json(url: str, key: str | None, loopback: bool, timeout: float, cap: int = 4 << 20):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({})) if loopback else urllib.request.build_opener()
    with opener.open(req, timeout=timeout) as r:
        data = r.read(cap + 1)
    if len(data) > cap:
        raise ValueError("answer too large")
    return json.loads(data.decode("utf-8"))


def _as_ctx(v) -> int | None:
    try:
        x = int(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return x if 0 < x < 10**9 else None


def _context_from_server(client, timeout: float) -> tuple[int | None, str]:
    """The context size as the server states it: llama.cpp's /props, vLLM's max_model_len, model metadata."""
    from .openai_backend import is_loopback

    loop = is_loopback(client.base_url)
    parts = urlsplit(client.base_url)
    root = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    try:
        props = _get_json(f"{root}/props", client._key, loop, timeout)
        gen = props.get("default_generation_settings") if isinstance(props, dict) else None
        for src, v in (("/props default_generation_settings.n_ctx", (gen or {}).get("n_ctx")),
                       ("/props n_ctx", props.get("n_ctx") if isinstance(props, dict) else None)):
            if _as_ctx(v):
                return _as_ctx(v), f"server's {src}"
    except Exception:  # noqa: BLE001 - most servers have no /props
        pass
    try:
        listing = _get_json(f"{client.base_url}/models", client._key, loop, timeout)
        entries = [m for m in listing.get("data", []) if isinstance(m, dict)]
    except Exception:  # noqa: BLE001
        return None, ""
    mine = [m for m in entries if m.get("id") == client.request_model] or (entries if len(entries) == 1 else [])
    for m in mine:
        meta = m.get("meta") if isinstance(m.get("meta"), dict) else {}
        for src, v in (("max_model_len", m.get("max_model_len")), ("context_length", m.get("context_length")),
                       ("context_window", m.get("context_window")), ("meta.n_ctx", meta.get("n_ctx")),
                       ("meta.n_ctx_train", meta.get("n_ctx_train"))):
            if _as_ctx(v):
                return _as_ctx(v), f"server's /models {src}"
    return None, ""


def _probe(client, logprobs: bool, top: int):
    return client.chat(PROBE_MESSAGES, schema=PROBE_SCHEMA, logprobs=logprobs, top_logprobs=top if logprobs else 0,
                       temperature=0.0, seed=0, max_tokens=16, stage=CHECK_STAGE)


def check_endpoint(llm: str | None = None, stages=None, timeout: float = 60.0, probe: bool = True) -> EndpointReport:
    """Look at the endpoint an ``--llm`` spec names (see the module docstring) and return a report.

    ``stages`` (names from ``notebooks/stages.toml``) only picks the top_logprobs the probe asks for;
    call ``report.require(stages)`` to fail on what they miss.  ``probe=False`` skips the chat probe
    (then JSON output and log-probabilities stay unknown).  In replay mode (a ``replay:`` spec or
    ``CASSANDRA_LLM_CACHE=replay``) nothing is contacted and nothing is required.
    """
    from . import parse_llm_spec, get_chat
    from .cache import cache_mode
    from .openai_backend import OpenAIChat, _SCHEMA_MODE, _SCHEMA_MODE_LOCK

    t0 = time.perf_counter()
    p = parse_llm_spec(llm)
    if p["kind"] == "replay" or cache_mode() == "replay":
        chat = get_chat(p["spec"], stage=CHECK_STAGE, cache="replay" if p["kind"] != "replay" else None)
        rep = EndpointReport(spec=p["spec"], kind="replay", model=chat.model, endpoint=chat.endpoint_id)
        reported = [m for m in chat.reported_models() if m != chat.model]
        rep.reported_model = ", ".join(reported) or None
        return rep
    if p["kind"] == "local":
        from .local import ensure_local_server, local_context_tokens, local_endpoint_id, local_model_name
        name = local_model_name()
        client = OpenAIChat(model=name, base_url=ensure_local_server(), name=name, stage=CHECK_STAGE,
                            schema_mode="json_object", seed_from_sample_index=True,
                            endpoint_id=local_endpoint_id(), timeout=timeout, max_retries=1)
        rep = EndpointReport(spec=p["spec"], kind="local", model=name, endpoint=client.endpoint_id,
                             base_url=client.base_url, context_tokens=local_context_tokens(),
                             context_source="the bundled server's n_ctx (CASSANDRA_LLM_CTX)")
    else:
        client = OpenAIChat(p["model"], p["base_url"], stage=CHECK_STAGE, timeout=timeout, max_retries=1)
        rep = EndpointReport(spec=p["spec"], kind="openai", model=p["model"], endpoint=client.endpoint_id,
                             base_url=client.base_url)
    try:
        try:
            rep.served_models = client.served_models(timeout=min(timeout, 10.0))
            rep.reachable = True
        except LLMError as e:
            rep.notes.append(str(e))
        if rep.context_tokens is None:
            rep.context_tokens, rep.context_source = _context_from_server(client, min(timeout, 10.0))
        if probe:
            top = max([needs_of(s).get("logprobs", 0) for s in (stages or STAGE_NEEDS)] + [1])
            _run_probes(client, rep, top)
            with _SCHEMA_MODE_LOCK:
                rep.schema_mode = client.schema_mode or _SCHEMA_MODE.get(client.base_url)
        reported = client.reported_model()
        rep.reported_model = None if reported in (None, client.request_model, rep.model) else reported
    finally:
        client.close()
    if rep.context_tokens is None and rep.reachable:
        rep.notes.append("the server does not state its context size; stages 02 and 03 need at least 4,096 tokens "
                         "(the theme park's code stage 8,192)")
    rep.seconds = round(time.perf_counter() - t0, 3)
    return rep


def _run_probes(client, rep: EndpointReport, top: int) -> None:
    from .openai_backend import ContextTooSmall, EndpointDead

    try:
        reply = _probe(client, True, top)
    except UnusableReply as e:
        if e.kind in ("no_logprobs", "no_top_logprobs", "bad_logprobs"):
            rep.logprobs = False
            rep.notes.append(f"log-probabilities: {e.reason}")
            return _probe_json_only(client, rep)
        rep.reachable = True
        rep.json_output = False
        rep.notes.append(f"JSON probe: {e.reason}")
        return None
    except ContextTooSmall as e:
        rep.reachable = True
        rep.context_tokens = rep.context_tokens or 1
        rep.notes.append(f"a 60-token probe did not fit: {e}")
        return None
    except EndpointDead as e:
        rep.reachable = False
        rep.notes.append(str(e))
        return None
    except LLMError as e:
        if "rejected the request" in str(e):  # perhaps the logprobs: try without
            rep.notes.append(f"with log-probabilities: {e}")
            ok = _probe_json_only(client, rep)
            if ok:
                rep.logprobs = False
            return None
        rep.reachable = False if rep.served_models is None else rep.reachable
        rep.notes.append(f"probe failed: {e}")
        return None
    rep.reachable = True
    rep.json_output = True
    rep.logprobs = True
    rep.top_logprobs = max((len(t.top) for t in reply.token_logprobs or []), default=0)
    if rep.top_logprobs < top:
        rep.notes.append(f"asked for {top} top log-probabilities, got {rep.top_logprobs}; the structure prior "
                         "pools fewer alternatives")
    return None


def _probe_json_only(client, rep: EndpointReport) -> bool:
    try:
        _probe(client, False, 0)
    except UnusableReply as e:
        rep.reachable, rep.json_output = True, False
        rep.notes.append(f"JSON probe: {e.reason}")
        return False
    except LLMError as e:
        rep.notes.append(f"JSON probe failed: {e}")
        rep.json_output = False if "rejected" in str(e) else None
        return False
    rep.reachable, rep.json_output = True, True
    return True
