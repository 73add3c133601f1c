"""Record/replay cache around any :class:`ChatClient`.

Each request is keyed by the SHA-256 of its canonical JSON form (model, endpoint, messages, schema,
temperature, logprobs, top_logprobs, max_tokens, seed, sample index); the stage tag is not part
of the key.  The endpoint is where the answers come from (a base URL, or ``local:sha256:<hash>``
for the bundled model whatever port it listens on), so answers recorded at one server are never
served for another.  Records live in one JSONL file per model, ``<model-slug>.jsonl``, one line
per answered request:

    {"key": "<sha256>", "model": ..., "endpoint": ..., "stage": ..., "created": ..., "request": {...},
     "reply": {...}}

Only usable replies are stored or served (:func:`~cassandra_wm.llm.base.reply_problem`); a recorded
line that fails the check (written by an older version, say) is skipped with a warning.

Where: answers are read from ``paths.LLM_CACHE`` (``$CASSANDRA_LLM_CACHE_DIR``, else
``<CASSANDRA_OUT>/data/llm_cache``) and from the answers shipped with the bundle
(``paths.SHIPPED_LLM_CACHE``, the repository's ``data/llm_cache``) whatever the output folder;
new answers are appended to the first.

Modes: ``off`` (pass through, no lookups), ``record`` (serve hits; on a miss call the backend and
append the answer, flushed at once), ``replay`` (hits only; a miss is an :class:`LLMError`).
:func:`cache_allows` tells other caches (the structure prior's) what the mode lets them do.
See ``data/llm_cache/README.md``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import logging
import os
import re
import sys
import threading
import warnings
from pathlib import Path

from .. import paths
from .base import ChatClient, LLMError, Reply, UnusableReply, llm_label, reply_problem
from .usage import record_usage

log = logging.getLogger("cassandra_wm.llm")

MODES = ("off", "record", "replay")
ENV_MODE = "CASSANDRA_LLM_CACHE"


def cache_mode(mode: str | None = None) -> str:
    """The cache mode: ``mode`` if given, else ``$CASSANDRA_LLM_CACHE``, else ``record``."""
    m = (mode if mode is not None else os.environ.get(ENV_MODE) or "record").strip().lower()
    if m not in MODES:
        src = "cache argument" if mode is not None else ENV_MODE
        raise ValueError(f"unknown LLM cache mode {m!r} (from {src}); use one of: {', '.join(MODES)}")
    return m


def cache_allows(action: str, mode: str | None = None) -> bool:
    """Whether the cache mode lets a cache ``"read"`` stored answers or ``"write"`` new ones.

    ``off``: neither; ``replay``: read only; ``record``: both.  Every cache of LLM answers in the
    bundle follows this, e.g. ``if cache_allows("read"): load()`` and ``if cache_allows("write"): save()``.
    """
    if action not in ("read", "write"):
        raise ValueError(f"action must be 'read' or 'write', not {action!r}")
    m = cache_mode(mode)
    return m == "record" or (m == "replay" and action == "read")


def model_slug(model: str) -> str:
    """A file-name-safe form of a model name: ``"SmolLM2-135M (Q4 GGUF)"`` -> ``"smollm2-135m-q4-gguf"``."""
    s = re.sub(r"[^a-z0-9._-]+", "-", model.strip().lower()).strip("-.")
    return s or "unnamed-model"


def request_key(model: str, messages: list[dict], schema: dict | None = None, logprobs: bool = False,
                top_logprobs: int = 0, temperature: float = 0.0, seed: int | None = None,
                max_tokens: int = 512, sample_index: int = 0, endpoint: str | None = None) -> tuple[str, dict]:
    """SHA-256 hex digest of the canonical request, and the request dict it was computed from.

    ``endpoint`` (None only for keys of files recorded before endpoints were keyed) names where the
    answer comes from; see the module docstring.
    """
    req = {"model": model, "messages": messages, "schema": schema, "logprobs": bool(logprobs),
           "top_logprobs": int(top_logprobs or 0) if logprobs else 0, "temperature": float(temperature),
           "seed": seed, "max_tokens": int(max_tokens), "sample_index": int(sample_index)}
    if endpoint is not None:
        req["endpoint"] = str(endpoint)
    blob = json.dumps(req, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest(), req


_KEY_FIELDS = ("messages", "schema", "logprobs", "top_logprobs", "temperature", "seed", "max_tokens", "sample_index")


def record_problem(rec: dict) -> tuple[str, str] | None:
    """``(kind, reason)`` when a cache record's reply could not serve its own request, else None."""
    req = rec.get("request") if isinstance(rec.get("request"), dict) else {}
    try:
        reply = Reply.from_dict(rec["reply"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        return "bad_record", f"the stored reply does not load ({type(e).__name__}: {e})"
    return reply_problem(reply, schema=req.get("schema"), logprobs=bool(req.get("logprobs")),
                         top_logprobs=int(req.get("top_logprobs") or 0), max_tokens=req.get("max_tokens"))


class _CacheFile:
    """One JSONL file, read incrementally (other clients or processes may append to it)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: dict[str, dict] = {}
        self._offset = 0
        self._lineno = 0
        self._mid_line = False
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Read lines appended since the last look; report and skip any that do not parse."""
        with self._lock:
            if not self.path.exists():
                return
            size = self.path.stat().st_size
            if size < self._offset:  # the file was replaced: start over
                self.entries.clear()
                self._offset = self._lineno = 0
                self._mid_line = False
            if size == self._offset:
                return
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
            self._offset += len(data)
            lines = data.split(b"\n")
            truncated = not data.endswith(b"\n")  # a run stopped mid-write leaves no newline
            if not truncated:
                lines.pop()
            if self._mid_line and lines and not lines[0]:
                lines.pop(0)  # the newline that closed a truncated line written earlier
            self._mid_line = truncated
            for i, raw in enumerate(lines):
                self._lineno += 1
                if not raw.strip():
                    continue
                rec = None
                try:
                    rec = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as e:
                    why = ("truncated" if truncated and i == len(lines) - 1 else "not valid JSON") + f" ({e})"
                else:
                    why = None if (isinstance(rec, dict) and isinstance(rec.get("key"), str)
                                   and isinstance(rec.get("reply"), dict)) else "missing 'key' or 'reply'"
                if why:
                    msg = f"LLM cache {self.path}: line {self._lineno} skipped, {why}"
                    warnings.warn(msg, RuntimeWarning, stacklevel=3)
                    log.warning(msg)
                    continue
                self.entries[rec["key"]] = rec

    def get(self, key: str) -> dict | None:
        with self._lock:
            return self.entries.get(key)

    def append(self, rec: dict) -> None:
        """Append one record as a single write, flushed and synced, on a line of its own."""
        line = json.dumps(rec, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as f:
                if f.tell() > 0:  # a previous run may have died mid-line: start a fresh one
                    with open(self.path, "rb") as r:
                        r.seek(-1, os.SEEK_END)
                        if r.read(1) != b"\n":
                            line = "\n" + line
                f.write(line.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            self.entries[rec["key"]] = rec


_FILES: dict[Path, _CacheFile] = {}
_FILES_LOCK = threading.Lock()


def _cache_file(path: Path) -> _CacheFile:
    path = Path(path).resolve()
    with _FILES_LOCK:
        if path not in _FILES:
            _FILES[path] = _CacheFile(path)
        return _FILES[path]


def _cache_files(model: str, path: str | Path | None) -> list[_CacheFile]:
    """The files a cache reads, the writable one first: ``path`` alone, else the recorded and shipped ones."""
    if path is not None:
        return [_cache_file(Path(path))]
    name = f"{model_slug(model)}.jsonl"
    out: list[_CacheFile] = []
    for d in paths.llm_cache_dirs():
        f = _cache_file(Path(d) / name)
        if f not in out:
            out.append(f)
    return out


class CachedChat(ChatClient):
    """Wraps ``inner`` with a record/replay cache (see the module docstring).

    ``inner`` may be None in replay mode (then ``model`` must be given).  ``endpoint`` defaults to
    ``inner.endpoint_id``; in replay mode without a backend it is read from the recorded answers
    (which must then come from one endpoint).  ``path`` pins one file; by default answers are read
    from ``paths.LLM_CACHE`` and ``paths.SHIPPED_LLM_CACHE`` and written to the first.  ``mode``
    defaults to ``$CASSANDRA_LLM_CACHE`` or ``record``.  Replies served from the cache have
    ``cached=True``.  A reply that fails :func:`~cassandra_wm.llm.base.reply_problem` is neither
    stored nor served: it raises :class:`~cassandra_wm.llm.base.UnusableReply`.
    """

    def __init__(self, inner: ChatClient | None, mode: str | None = None, path: str | Path | None = None,
                 stage: str | None = None, model: str | None = None, endpoint: str | None = None):
        self.mode = cache_mode(mode)
        if inner is None and self.mode != "replay":
            raise ValueError("CachedChat without a backend only works in replay mode")
        self.inner = inner
        self.model = model or (inner.model if inner is not None else "")
        if not self.model:
            raise ValueError("CachedChat needs a model name")
        self.stage = stage
        self._files = _cache_files(self.model, path)
        self.path = self._files[0].path
        if endpoint is None and inner is not None:
            endpoint = getattr(inner, "endpoint_id", "") or ""
        self._endpoint = endpoint
        self.hits = 0
        self.misses = 0
        self.skipped = 0  # recorded answers refused as unusable

    @property
    def endpoint_id(self) -> str:
        if self._endpoint is None:  # replay without a backend: the one endpoint the records come from
            eps = self.recorded_endpoints()
            if len(eps) > 1:
                raise LLMError(f"the LLM cache for {self.model!r} holds answers from several endpoints "
                               f"({', '.join(eps)}); replay one with --llm openai:{self.model}@<url> and "
                               f"{ENV_MODE}=replay")
            self._endpoint = eps[0] if eps else ""
        return self._endpoint

    def _records(self):
        for f in self._files:
            f.refresh()
            with f._lock:
                recs = list(f.entries.values())
            yield from recs

    def recorded_endpoints(self) -> list[str]:
        """The endpoints this model's recorded answers come from (records that name one)."""
        return sorted({str(r["request"]["endpoint"]) for r in self._records()
                       if r.get("model") == self.model and isinstance(r.get("request"), dict)
                       and "endpoint" in r["request"]})

    @property
    def label(self) -> str:
        """What tables print: the backend's label, or in replay the model plus what its server reported."""
        if self.inner is not None and self.mode != "replay":
            return self.inner.label
        reported = [m for m in self.reported_models() if m != self.model]
        return llm_label(self.model, ", ".join(reported) or None)

    def reported_models(self) -> list[str]:
        """The model ids the server reported in the recorded answers of this model and endpoint."""
        ep = self.endpoint_id
        return sorted({str(r["reply"].get("server_model") or "") for r in self._records()
                       if r.get("model") == self.model and r.get("request", {}).get("endpoint") == ep} - {""})

    def describe(self) -> str:
        base = self.inner.describe() if self.inner is not None else self.model
        return f"{base} [cache {self.mode}: {self.path}]"

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()

    def _lookup(self, key: str, call: dict) -> tuple[dict | None, str | None]:
        """The first usable record under ``key`` (checked against ``call``), and why one was refused."""
        refused = None
        for f in self._files:
            rec = f.get(key)
            if rec is None:
                f.refresh()
                rec = f.get(key)
            if rec is None:
                continue
            try:
                problem = reply_problem(Reply.from_dict(rec["reply"]), schema=call["schema"],
                                        logprobs=call["logprobs"], top_logprobs=call["top_logprobs"],
                                        max_tokens=call["max_tokens"])
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                problem = ("bad_record", f"the stored reply does not load ({type(e).__name__}: {e})")
            if problem is None:
                return rec, None
            refused = f"{f.path} holds an unusable answer ({problem[0]}: {problem[1]})"
            self.skipped += 1
            log.warning("LLM cache: not serving request %s: %s", key, refused)
        return None, refused

    def chat(self, messages: list[dict], schema: dict | None = None, logprobs: bool = False,
             top_logprobs: int = 0, temperature: float = 0.0, seed: int | None = None,
             max_tokens: int = 512, sample_index: int = 0, stage: str | None = None) -> Reply:
        """Serve from the cache when possible; otherwise behave as the mode says."""
        stage = stage or self.stage
        call = dict(messages=messages, schema=schema, logprobs=logprobs, top_logprobs=top_logprobs,
                    temperature=temperature, seed=seed, max_tokens=max_tokens, sample_index=sample_index)
        if self.mode == "off":
            return self._ask(call, stage)
        endpoint = self.endpoint_id
        key, req = request_key(self.model, **call, endpoint=endpoint)
        rec, refused = self._lookup(key, call)
        if rec is not None:
            self.hits += 1
            reply = Reply.from_dict(rec["reply"])
            reply.cached = True
            record_usage(stage, self.model, cached=True, endpoint=endpoint)
            return reply
        self.misses += 1
        if self.mode == "replay":
            why = f"; {refused}" if refused else ""
            legacy = sum(1 for r in self._records() if r.get("model") == self.model
                         and "endpoint" not in (r.get("request") or {}))
            hint = (f" ({legacy} records there predate endpoint keys: migrate them with python -m "
                    "cassandra_wm.llm migrate FILE --endpoint ENDPOINT)") if legacy else ""
            err = LLMError(
                f"LLM cache replay miss in stage {stage or 'unspecified'!r}: request {key} (model {self.model!r}, "
                f"endpoint {endpoint or 'unknown'!r}) is not in {' or '.join(str(f.path) for f in self._files)}"
                f"{why}{hint}. Record it first: rerun with the LLM reachable and {ENV_MODE}=record (or "
                "cache='record'), or copy in the cache file that holds it")
            record_usage(stage, self.model, error=str(err), endpoint=endpoint)
            raise err
        reply = self._ask(call, stage)
        out = reply.to_dict()
        out["cached"] = False
        self._files[0].append({"key": key, "model": self.model, "endpoint": endpoint, "stage": stage,
                               "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                               "request": req, "reply": out})
        return reply

    def _ask(self, call: dict, stage) -> Reply:
        """The backend's reply, refused (and counted) when unusable, whatever backend it is."""
        if self.inner is None:  # pragma: no cover - prevented in __init__
            raise LLMError("no backend to ask")
        reply = self.inner.chat(**call, stage=stage)
        problem = reply_problem(reply, schema=call["schema"], logprobs=call["logprobs"],
                                top_logprobs=call["top_logprobs"], max_tokens=call["max_tokens"])
        if problem is not None:
            err = UnusableReply(*problem, endpoint=getattr(self.inner, "endpoint_id", ""))
            record_usage(stage, self.model, error=str(err), endpoint=getattr(self.inner, "endpoint_id", ""))
            raise err
        return reply


def _find_cache_file(slug_or_path: str | Path) -> Path:
    p = Path(slug_or_path)
    if p.suffix == ".jsonl":
        if not p.exists():
            raise LLMError(f"no LLM cache file {p}")
        return p
    for d in paths.llm_cache_dirs():
        cand = Path(d) / f"{slug_or_path}.jsonl"
        if cand.exists():
            return cand
    have = sorted({x.stem for d in paths.llm_cache_dirs() if Path(d).exists() for x in Path(d).glob("*.jsonl")})
    where = " or ".join(str(d) for d in paths.llm_cache_dirs())
    raise LLMError(f"no LLM cache file {slug_or_path}.jsonl in {where}; recorded caches here: "
                   f"{', '.join(have) or 'none'}")


def recorded_model(slug_or_path: str | Path) -> tuple[str, Path]:
    """The model name recorded in a cache file given by slug (looked up in every cache folder) or path."""
    p = _find_cache_file(slug_or_path)
    f = _cache_file(p)
    f.refresh()
    with f._lock:
        models = {str(r.get("model")) for r in f.entries.values() if r.get("model")}
    if not models:
        raise LLMError(f"LLM cache {p} holds no usable records")
    if len(models) > 1:
        raise LLMError(f"LLM cache {p} mixes several models ({', '.join(sorted(models))}); split it by model")
    return models.pop(), p


def _read_records(path: Path) -> list[tuple[int, dict | None, str | None]]:
    """(line number, record, why it does not load) for every non-blank line of a cache file."""
    out = []
    with open(path, "rb") as fh:
        for i, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                out.append((i, None, f"not valid JSON ({e})"))
                continue
            ok = isinstance(rec, dict) and isinstance(rec.get("key"), str) and isinstance(rec.get("reply"), dict) \
                and isinstance(rec.get("request"), dict)
            out.append((i, rec if ok else None, None if ok else "missing 'key', 'request' or 'reply'"))
    return out


def scan_cache_file(path: str | Path) -> dict:
    """Check every line of a cache file: ``{"records", "usable", "legacy", "problems": [(line, kind, reason)]}``.

    ``legacy`` counts records whose request names no endpoint (recorded before endpoints were keyed);
    a usable file has no problems and no key that differs from its request's.
    """
    path = Path(path)
    stats = {"path": str(path), "records": 0, "usable": 0, "legacy": 0, "problems": []}
    for line, rec, why in _read_records(path):
        stats["records"] += 1
        if rec is None:
            stats["problems"].append((line, "bad_line", why))
            continue
        req = rec["request"]
        if "endpoint" not in req:
            stats["legacy"] += 1
        problem = record_problem(rec)
        if problem is None:
            fields = {k: req[k] for k in _KEY_FIELDS if k in req}
            key = request_key(req.get("model", ""), **fields, endpoint=req.get("endpoint"))[0]
            if key != rec["key"]:
                problem = ("bad_key", "the key is not the hash of the stored request")
        if problem is None:
            stats["usable"] += 1
        else:
            stats["problems"].append((line, *problem))
    return stats


def migrate_cache_file(path: str | Path, endpoint: str, out: str | Path | None = None) -> dict:
    """Rewrite a cache file so its keys name ``endpoint``, dropping the records nobody may be served.

    Deterministic and idempotent: each kept line is the stored record with ``request.endpoint`` set
    (where it had none), ``endpoint`` beside it and ``key`` recomputed from the stored request; the
    stored replies are copied unchanged, so no LLM output is made up.  Lines that do not load and
    replies that fail :func:`~cassandra_wm.llm.base.reply_problem` (empty, cut off, off-schema...)
    are dropped.  Writes ``out`` (default: in place, atomically) and returns what it did.
    """
    from ..report import atomic_write_text

    path = Path(path)
    if not endpoint:
        raise ValueError("give the endpoint the answers came from (a base URL, or 'local' for the bundled model)")
    kept: dict[str, dict] = {}
    stats = {"path": str(path), "read": 0, "kept": 0, "rekeyed": 0, "dropped": []}
    for line, rec, why in _read_records(path):
        stats["read"] += 1
        if rec is None:
            stats["dropped"].append((line, "bad_line", why))
            continue
        problem = record_problem(rec)
        if problem is not None:
            stats["dropped"].append((line, *problem))
            continue
        req = dict(rec["request"])
        req.setdefault("endpoint", endpoint)
        fields = {k: req[k] for k in _KEY_FIELDS if k in req}
        key, req = request_key(req["model"], **fields, endpoint=req["endpoint"])
        if key != rec["key"]:
            stats["rekeyed"] += 1
        new = {"key": key, "model": rec.get("model"), "endpoint": req["endpoint"], "stage": rec.get("stage"),
               "created": rec.get("created"), "request": req, "reply": rec["reply"]}
        kept[key] = new  # a later answer to the same request wins, as when reading the file
    stats["kept"] = len(kept)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept.values())
    atomic_write_text(Path(out) if out is not None else path, text)
    with _FILES_LOCK:
        _FILES.pop(Path(out or path).resolve(), None)
    return stats


def main(argv: list[str] | None = None) -> int:
    """``python -m cassandra_wm.llm scan FILE...`` or ``migrate FILE --endpoint ENDPOINT``."""
    ap = argparse.ArgumentParser(prog="python -m cassandra_wm.llm", description=main.__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sc = sub.add_parser("scan", help="check every record; exit 1 when any is unusable")
    sc.add_argument("files", nargs="+")
    mg = sub.add_parser("migrate", help="key a file's records by endpoint and drop unusable ones")
    mg.add_argument("file")
    mg.add_argument("--endpoint", required=True,
                    help="where the answers came from: a base URL, or 'local' for the bundled model")
    mg.add_argument("--out", help="write here instead of in place")
    args = ap.parse_args(argv)
    if args.cmd == "scan":
        bad = 0
        for f in args.files:
            st = scan_cache_file(f)
            print(f"{f}: {st['records']} records, {st['usable']} usable, {len(st['problems'])} unusable, "
                  f"{st['legacy']} without an endpoint")
            for line, kind, why in st["problems"][:20]:
                print(f"  line {line}: {kind}: {why}")
            bad += len(st["problems"])
        return 1 if bad else 0
    endpoint = args.endpoint
    if endpoint == "local":
        from .local import local_endpoint_id
        endpoint = local_endpoint_id()
    st = migrate_cache_file(args.file, endpoint, args.out)
    print(f"{args.file}: read {st['read']}, kept {st['kept']} ({st['rekeyed']} rekeyed for {endpoint}), "
          f"dropped {len(st['dropped'])}")
    for line, kind, why in st["dropped"]:
        print(f"  dropped line {line}: {kind}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
