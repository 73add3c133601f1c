"""Record/replay cache around any :class:`ChatClient`.

Each request is keyed by the SHA-256 of its canonical JSON form (model, messages, schema,
temperature, logprobs, top_logprobs, max_tokens, seed, sample index); the stage tag is not part
of the key.  Records live in one JSONL file per model, ``data/llm_cache/<model-slug>.jsonl``,
one line per answered request:

    {"key": "<sha256>", "model": ..., "stage": ..., "created": ..., "request": {...}, "reply": {...}}

Modes: ``off`` (pass through), ``record`` (serve hits; on a miss call the backend and append the
answer, flushed at once), ``replay`` (hits only; a miss is an :class:`LLMError`).
See ``data/llm_cache/README.md``.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
import threading
import warnings
from pathlib import Path

from .. import paths
from .base import ChatClient, LLMError, Reply
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


def model_slug(model: str) -> str:
    """A file-name-safe form of a model name: ``"SmolLM2-135M (Q4 GGUF)"`` -> ``"smollm2-135m-q4-gguf"``."""
    s = re.sub(r"[^a-z0-9._-]+", "-", model.strip().lower()).strip("-.")
    return s or "unnamed-model"


def request_key(model: str, messages: list[dict], schema: dict | None = None, logprobs: bool = False,
                top_logprobs: int = 0, temperature: float = 0.0, seed: int | None = None,
                max_tokens: int = 512, sample_index: int = 0) -> tuple[str, dict]:
    """SHA-256 hex digest of the canonical request, and the request dict it was computed from."""
    req = {"model": model, "messages": messages, "schema": schema, "logprobs": bool(logprobs),
           "top_logprobs": int(top_logprobs or 0) if logprobs else 0, "temperature": float(temperature),
           "seed": seed, "max_tokens": int(max_tokens), "sample_index": int(sample_index)}
    blob = json.dumps(req, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest(), req


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


class CachedChat(ChatClient):
    """Wraps ``inner`` with a record/replay cache (see the module docstring).

    ``inner`` may be None in replay mode (then ``model`` must be given).  ``path`` defaults to
    ``paths.LLM_CACHE / f"{model_slug(model)}.jsonl"``; ``mode`` defaults to ``$CASSANDRA_LLM_CACHE``
    or ``record``.  Replies served from the cache have ``cached=True``.
    """

    def __init__(self, inner: ChatClient | None, mode: str | None = None, path: str | Path | None = None,
                 stage: str | None = None, model: str | None = None):
        self.mode = cache_mode(mode)
        if inner is None and self.mode != "replay":
            raise ValueError("CachedChat without a backend only works in replay mode")
        self.inner = inner
        self.model = model or (inner.model if inner is not None else "")
        if not self.model:
            raise ValueError("CachedChat needs a model name")
        self.stage = stage
        self.path = Path(path) if path is not None else paths.LLM_CACHE / f"{model_slug(self.model)}.jsonl"
        self._file = _cache_file(self.path)
        self.hits = 0
        self.misses = 0

    def describe(self) -> str:
        base = self.inner.describe() if self.inner is not None else self.model
        return f"{base} [cache {self.mode}: {self.path}]"

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()

    def chat(self, messages: list[dict], schema: dict | None = None, logprobs: bool = False,
             top_logprobs: int = 0, temperature: float = 0.0, seed: int | None = None,
             max_tokens: int = 512, sample_index: int = 0, stage: str | None = None) -> Reply:
        """Serve from the cache when possible; otherwise behave as the mode says."""
        stage = stage or self.stage
        call = dict(messages=messages, schema=schema, logprobs=logprobs, top_logprobs=top_logprobs,
                    temperature=temperature, seed=seed, max_tokens=max_tokens, sample_index=sample_index)
        if self.mode == "off":
            return self.inner.chat(**call, stage=stage)
        key, req = request_key(self.model, **call)
        rec = self._file.get(key)
        if rec is None:
            self._file.refresh()
            rec = self._file.get(key)
        if rec is not None:
            self.hits += 1
            reply = Reply.from_dict(rec["reply"])
            reply.cached = True
            record_usage(stage, self.model, cached=True)
            return reply
        self.misses += 1
        if self.mode == "replay":
            raise LLMError(
                f"LLM cache replay miss in stage {stage or 'unspecified'!r}: request {key} "
                f"(model {self.model!r}) is not in {self.path}. Record it first: rerun with the LLM reachable "
                f"and {ENV_MODE}=record (or cache='record'), or copy in the cache file that holds it")
        if self.inner is None:  # pragma: no cover - prevented in __init__
            raise LLMError("no backend to record from")
        reply = self.inner.chat(**call, stage=stage)
        out = reply.to_dict()
        out["cached"] = False
        self._file.append({"key": key, "model": self.model, "stage": stage,
                           "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                           "request": req, "reply": out})
        return reply


def recorded_model(slug_or_path: str | Path) -> tuple[str, Path]:
    """The model name recorded in a cache file given by slug or path, and the file's path."""
    p = Path(slug_or_path)
    if p.suffix != ".jsonl":
        p = paths.LLM_CACHE / f"{slug_or_path}.jsonl"
    if not p.exists():
        have = sorted(x.stem for x in paths.LLM_CACHE.glob("*.jsonl")) if paths.LLM_CACHE.exists() else []
        raise LLMError(f"no LLM cache file {p}; recorded caches here: {', '.join(have) or 'none'}")
    f = _cache_file(p)
    f.refresh()
    with f._lock:
        models = {str(r.get("model")) for r in f.entries.values() if r.get("model")}
    if not models:
        raise LLMError(f"LLM cache {p} holds no usable records")
    if len(models) > 1:
        raise LLMError(f"LLM cache {p} mixes several models ({', '.join(sorted(models))}); split it by model")
    return models.pop(), p
