"""Neural conditionals of the Bayesian network: one small torch net per node.

* Numeric node: a quantile-regression MLP.  It outputs a quantile grid of the
  standardised target (``n_quantiles`` levels evenly spread over (0, 1), 19 by
  default: 0.05, 0.10, ..., 0.95) as a base value plus cumulated softplus
  increments, so the predicted quantiles are always ordered.  A linear skip
  from the inputs to the base helps the net carry a previous value forward.
  Trained with the pinball loss averaged over the grid.  Sampling draws
  u ~ U(0, 1) and interpolates linearly between neighbouring quantiles; below
  the lowest and above the highest level the end segments are extended
  linearly to u = 0 and u = 1.
* Categorical node: an MLP with a softmax head trained with cross-entropy
  (nats); sampled by inverse CDF with the same u.

Training: numeric nets start from a least-squares linear-Gaussian fit (skip
weights, base and quantile gaps from the residual spread), then Adam on
shuffled minibatches with early stopping on the validation loss (the best
epoch's weights are kept, the starting point included); everything seeded.
Defaults (32 hidden units, batch 256, at most 40 epochs) fit a node on
~4,500 rows in about a quarter to half a second on one core.
"""
from __future__ import annotations

import json
import math
import time
import zlib
from dataclasses import asdict, dataclass, fields
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class FitSettings:
    """Network size and training settings of one conditional (part of every cache key)."""

    hidden: int = 32          # width of the hidden layers
    layers: int = 1           # number of hidden layers (0 = linear model)
    n_quantiles: int = 19     # quantile grid size for numeric nodes
    lr: float = 2e-2
    weight_decay: float = 0.0
    batch_size: int = 256
    max_epochs: int = 40
    patience: int = 8         # epochs without validation improvement before stopping
    min_delta: float = 1e-3   # smallest relative improvement of the validation loss that counts
    warm_start: bool = True   # numeric nodes start from a least-squares linear-Gaussian fit
    delta_targets: bool = True  # numeric targets are daily changes (see encoding.py)

    @classmethod
    def from_kwargs(cls, kwargs: dict | None) -> "FitSettings":
        """Build from a dict; raises ValueError on an unknown setting."""
        kwargs = dict(kwargs or {})
        names = {f.name for f in fields(cls)}
        bad = [k for k in kwargs if k not in names]
        if bad:
            raise ValueError(f"unknown fit settings {bad}; known: {sorted(names)}")
        s = cls(**kwargs)
        if s.n_quantiles < 2 or s.hidden < 1 or s.layers < 0 or s.batch_size < 1 or s.max_epochs < 1:
            raise ValueError(f"invalid fit settings: {s}")
        return s

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def quantile_levels(n: int) -> np.ndarray:
    """``n`` evenly spread levels in (0, 1): 19 gives 0.05, 0.10, ..., 0.95."""
    return np.arange(1, n + 1, dtype=np.float64) / (n + 1)


def _body(n_in: int, hidden: int, layers: int) -> tuple[nn.Module, int]:
    mods: list[nn.Module] = []
    width = n_in
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    return nn.Sequential(*mods), width


class QuantileNet(nn.Module):
    """MLP -> ordered quantiles (base + cumulative softplus increments), plus a linear skip to the base."""

    def __init__(self, n_in: int, levels: np.ndarray, hidden: int = 32, layers: int = 1):
        super().__init__()
        self.body, width = _body(n_in, hidden, layers)
        k = len(levels)
        self.head = nn.Linear(width, k)
        self.skip = nn.Linear(n_in, 1, bias=False)
        nn.init.zeros_(self.skip.weight)
        self.register_buffer("levels", torch.as_tensor(levels, dtype=torch.float32))
        # start from the quantiles of a standard normal: base and softplus-inverse of the gaps
        normal = torch.distributions.Normal(0.0, 1.0).icdf(self.levels)
        gaps = torch.clamp(normal[1:] - normal[:-1], min=1e-3)
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias[0] = normal[0]
            self.head.bias[1:] = torch.log(torch.expm1(gaps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.head(self.body(x))
        base = o[:, :1] + self.skip(x)
        inc = F.softplus(o[:, 1:])
        return torch.cat([base, base + torch.cumsum(inc, dim=1)], dim=1)


class CategoricalNet(nn.Module):
    """MLP -> class logits."""

    def __init__(self, n_in: int, n_classes: int, hidden: int = 32, layers: int = 1):
        super().__init__()
        self.body, width = _body(n_in, hidden, layers)
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def pinball_loss(q: torch.Tensor, y: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Mean over rows and levels of the pinball (quantile) loss; q is (n, K), y is (n,)."""
    diff = y.unsqueeze(1) - q
    return torch.maximum(levels * diff, (levels - 1.0) * diff).mean()


def interpolate_quantiles(q: torch.Tensor, levels: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Values at probabilities ``u`` (n,) from quantiles ``q`` (n, K) at ``levels`` (K,).

    Piecewise linear between levels; the two end segments are extended to u = 0 and u = 1.
    """
    k = levels.shape[0]
    lo_slope = (q[:, 1] - q[:, 0]) / (levels[1] - levels[0])
    hi_slope = (q[:, -1] - q[:, -2]) / (levels[-1] - levels[-2])
    q_ext = torch.cat([(q[:, 0] - lo_slope * levels[0]).unsqueeze(1), q,
                       (q[:, -1] + hi_slope * (1.0 - levels[-1])).unsqueeze(1)], dim=1)
    t_ext = torch.cat([levels.new_zeros(1), levels, levels.new_ones(1)])
    j = torch.clamp(torch.bucketize(u, t_ext), 1, k + 1)  # t_ext[j-1] <= u < t_ext[j]
    t0, t1 = t_ext[j - 1], t_ext[j]
    q0 = q_ext.gather(1, (j - 1).unsqueeze(1)).squeeze(1)
    q1 = q_ext.gather(1, j.unsqueeze(1)).squeeze(1)
    w = (u - t0) / (t1 - t0)
    return q0 + w * (q1 - q0)


class Conditional:
    """A fitted conditional of one node: the net plus what is needed to use and save it."""

    def __init__(self, node: str, kind: str, net: nn.Module, n_in: int, n_out: int, settings: FitSettings,
                 info: dict | None = None):
        if kind not in ("numeric", "categorical"):
            raise ValueError(f"kind must be 'numeric' or 'categorical', got {kind!r}")
        self.node, self.kind, self.net = node, kind, net
        self.n_in, self.n_out, self.settings = n_in, n_out, settings
        self.info = dict(info or {})
        self.net.eval()

    @property
    def val_loss(self) -> float:
        return float(self.info.get("val_loss", math.nan))

    @property
    def levels(self) -> torch.Tensor:
        return self.net.levels

    @torch.no_grad()
    def quantiles(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised quantiles (n, K) of a numeric node."""
        return self.net(x)

    @torch.no_grad()
    def probs(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (n, C) of a categorical node."""
        return torch.softmax(self.net(x), dim=1)

    @torch.no_grad()
    def sample(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """One draw per row from uniforms ``u``: standardised values, or class indices (int64)."""
        if self.kind == "numeric":
            return interpolate_quantiles(self.net(x), self.net.levels, u)
        cdf = torch.cumsum(torch.softmax(self.net(x), dim=1), dim=1)
        idx = torch.searchsorted(cdf, u.unsqueeze(1)).squeeze(1)
        return torch.clamp(idx, max=self.n_out - 1)

    @torch.no_grad()
    def loss(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Pinball loss (numeric) or cross-entropy in nats (categorical) on the given rows."""
        if self.kind == "numeric":
            return float(pinball_loss(self.net(x), y, self.net.levels))
        return float(F.cross_entropy(self.net(x), y))

    def config(self) -> dict:
        return {"node": self.node, "kind": self.kind, "n_in": self.n_in, "n_out": self.n_out,
                "settings": asdict(self.settings), "info": self.info}

    @classmethod
    def from_config(cls, cfg: dict, state_dict: dict) -> "Conditional":
        s = FitSettings.from_kwargs(cfg["settings"])
        net = build_net(cfg["kind"], cfg["n_in"], cfg["n_out"], s)
        net.load_state_dict(state_dict)
        return cls(cfg["node"], cfg["kind"], net, cfg["n_in"], cfg["n_out"], s, cfg.get("info"))


def warm_start(net: QuantileNet, x: np.ndarray, y: np.ndarray, ridge: float = 1e-3) -> None:
    """Start a quantile net at the linear-Gaussian fit: skip weights and base from ridge least
    squares, quantile gaps from the residual spread.  Saves many optimiser steps when a node is
    (nearly) a linear function of its inputs, e.g. a stock that falls with today's customers."""
    # torch rather than numpy: numpy's BLAS may spin up threads on a busy machine
    x64 = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    y64 = torch.as_tensor(np.asarray(y), dtype=torch.float64)
    xm, ym = x64.mean(dim=0), y64.mean()
    xc = x64 - xm
    gram = xc.T @ xc + ridge * len(x64) * torch.eye(x64.shape[1], dtype=torch.float64)
    w = torch.linalg.solve(gram, xc.T @ (y64 - ym))
    b = float(ym - xm @ w)
    sigma = float(torch.std(y64 - (x64 @ w + b), correction=0))
    levels = net.levels.double()
    normal = torch.distributions.Normal(0.0, 1.0).icdf(levels) * max(sigma, 1e-3)
    gaps = torch.clamp(normal[1:] - normal[:-1], min=1e-4)
    with torch.no_grad():
        net.skip.weight.copy_(w.float().unsqueeze(0))
        net.head.bias[0] = float(b) + float(normal[0])
        net.head.bias[1:] = torch.log(torch.expm1(gaps)).float()


def build_net(kind: str, n_in: int, n_out: int, settings: FitSettings) -> nn.Module:
    """A fresh net: ``n_out`` is the quantile count (numeric) or the class count (categorical)."""
    if kind == "numeric":
        return QuantileNet(n_in, quantile_levels(n_out), settings.hidden, settings.layers)
    if kind == "categorical":
        return CategoricalNet(n_in, n_out, settings.hidden, settings.layers)
    raise ValueError(f"kind must be 'numeric' or 'categorical', got {kind!r}")


def fit_conditional(node: str, kind: str, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                    y_val: np.ndarray, n_classes: int | None = None, settings: FitSettings | None = None,
                    seed: int = 0) -> Conditional:
    """Fit one node's conditional on (x_train, y_train), early-stopped on (x_val, y_val).

    ``y`` holds standardised floats (numeric) or class indices (categorical).
    The returned conditional carries ``info`` with val_loss (the best epoch's
    validation loss), train_loss, epochs and seconds.
    """
    settings = settings or FitSettings()
    if len(x_train) == 0 or len(x_val) == 0:
        raise ValueError(f"{node}: need non-empty training and validation rows "
                         f"(got {len(x_train)} and {len(x_val)})")
    if len(x_train) != len(y_train) or len(x_val) != len(y_val):
        raise ValueError(f"{node}: inputs and targets differ in length")
    if x_train.shape[1] != x_val.shape[1]:
        raise ValueError(f"{node}: train and validation inputs differ in width")
    if kind == "categorical" and not n_classes:
        raise ValueError(f"{node}: categorical node needs n_classes")
    t0 = time.perf_counter()
    n_in = int(x_train.shape[1])
    n_out = settings.n_quantiles if kind == "numeric" else int(n_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_net(kind, n_in, n_out, settings)
    if kind == "numeric" and settings.warm_start:
        warm_start(net, x_train, y_train)
    gen = torch.Generator().manual_seed(seed)
    xt, xv = torch.as_tensor(x_train, dtype=torch.float32), torch.as_tensor(x_val, dtype=torch.float32)
    if kind == "numeric":
        yt, yv = torch.as_tensor(y_train, dtype=torch.float32), torch.as_tensor(y_val, dtype=torch.float32)
        levels = net.levels

        def loss_fn(out, y):
            return pinball_loss(out, y, levels)
    else:
        yt, yv = torch.as_tensor(y_train, dtype=torch.int64), torch.as_tensor(y_val, dtype=torch.int64)
        loss_fn = F.cross_entropy
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    n, bs = len(xt), settings.batch_size
    with torch.no_grad():
        best = float(loss_fn(net(xv), yv))
        train_loss = float(loss_fn(net(xt), yt))
    best_state = {k: v.clone() for k, v in net.state_dict().items()}
    best_epoch, bad, epoch = 0, 0, 0
    for epoch in range(1, settings.max_epochs + 1):
        net.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            loss = loss_fn(net(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        net.eval()
        with torch.no_grad():
            v = float(loss_fn(net(xv), yv))
        if not math.isfinite(v):
            break
        if v < best - settings.min_delta * abs(best):
            best, best_epoch, bad, train_loss = v, epoch, 0, total / n
            best_state = {k: t.clone() for k, t in net.state_dict().items()}
        else:
            bad += 1
            if bad >= settings.patience:
                break
    net.load_state_dict(best_state)
    net.eval()
    base = baseline_loss(kind, y_train, y_val, net.levels if kind == "numeric" else None, n_out)
    info = {"val_loss": best, "train_loss": train_loss, "best_epoch": best_epoch, "epochs": epoch,
            "seconds": time.perf_counter() - t0, "n_train": n, "n_val": len(xv), "seed": seed,
            "baseline_val_loss": base, "suspect": bool(not math.isfinite(best) or best > SUSPECT_FACTOR * base)}
    return Conditional(node, kind, net, n_in, n_out, settings, info)


SUSPECT_FACTOR = 10.0  # a validation loss this many times the no-input baseline marks a broken fit


def baseline_loss(kind: str, y_train, y_val, levels=None, n_classes: int | None = None) -> float:
    """Validation loss of a predictor without inputs: the training quantiles (numeric, pinball loss at
    ``levels``) or the training class frequencies (categorical, cross-entropy).  A fitted conditional
    whose loss is many times this one is broken (``info["suspect"]``), whatever its number says."""
    yt = torch.as_tensor(np.asarray(y_train))
    yv = torch.as_tensor(np.asarray(y_val))
    if kind == "numeric":
        q = torch.quantile(yt.double(), levels.double()).float()
        return float(pinball_loss(q.expand(len(yv), -1), yv.float(), levels))
    counts = torch.bincount(yt.long(), minlength=int(n_classes)).double() + 0.5
    logp = torch.log(counts / counts.sum())
    return float(-logp[yv.long()].mean())


def node_seed(seed: int, node: str) -> int:
    """A per-node seed that depends only on the base seed and the node name (stable across runs)."""
    return (int(seed) * 1_000_003 + zlib.crc32(node.encode())) % (2**31 - 1)


__all__ = ["SUSPECT_FACTOR", "baseline_loss", "FitSettings", "quantile_levels", "QuantileNet", "CategoricalNet", "pinball_loss",
           "interpolate_quantiles", "Conditional", "build_net", "fit_conditional", "node_seed"]
