"""Every stochastic field outside the Bayesian network, each from its own conditional.

The paper's theme park models six high-impact variables with the causal network and "the rest as independent
variables".  :class:`IndependentFields` is that rest: every stochastic field of the state the network does not
model gets a conditional of its own, fitted on the training transitions, given the previous state, the action
and the next deterministic variables (the network's shared input block, :mod:`.encoding`), never the other
fields of the same day.  Three kinds of field:

* **spec variables** outside the network (the park's revenue, expenses, guest statistics, uptimes, ...): one
  quantile-regression (numeric) or softmax (categorical) net each, exactly as a network node without parents
  (a :class:`~.bn.BayesNet` with no edges);
* **item fields**: a numeric or true/false field of the items of a list in the state (a ride's
  ``out_of_service`` and ``uptime``, a shop's ``guests_served``, a path tile's ``cleanliness``, ...).  One
  conditional per field, pooled over the items of all states, given the shared block plus the item's own
  previous fields (numbers standardised, strings one-hot);
* **scalar fields**: a number outside the spec's variables (the park's ``/hidden/prev_guest_happiness``),
  given the shared block and its previous value (not the clock or the end-of-game flags, which the world
  model's bookkeeping sets).

Which fields are stochastic is read off the data: an item or scalar field counts when it changed on at least
``min_change`` of the days whose action was ``wait`` (or refused), so prices and order quantities, which only
actions change, are left to the deterministic source.  Items are matched across a day by ``keys`` (the park's
rides and shops by their tile, staff by their place in the list).  Identity fields (``skip``: tile coordinates,
a staff member's target) are neither modelled nor used as inputs, so the fields carry over to layouts the data
never saw.  Lists of plain values (the park's exact ``/hidden/cleanliness`` grid, which only the simulator
reads) are not modelled.

Inputs are standardised and bounded like the network's (``encoding.Z_CLIP``).  Numeric targets are daily changes,
standardised; a sampled value is kept within the range the training data
show for that field (``clipped:<field>`` counts the values pulled back; a non-finite draw keeps the previous
value, ``nonfinite:<field>``).  Integer fields are rounded, true/false fields are sampled as two classes.

:class:`WithIndependentFields` puts a fitted network and the independent fields behind one stochastic model for
:class:`~cassandra_wm.world_model.WorldModel`: ``sample`` returns the network's and the independent spec
variables, ``write_fields`` fills the item and scalar fields into the next states (copy-on-write), and
``guarded_nodes`` names the network's nodes (the only ones the support guard checks).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..envs.base import EnvSpec, coerce_action, get_path, pointer_tokens
from ..report import atomic_write_text, provenance as _provenance
from .conditionals import Conditional, FitSettings, fit_conditional, node_seed
from .encoding import Z_CLIP, Encoder, as_records
from .encoding import _to_float as _num  # a field as a float, NaN when missing or not a number

FORMAT = 1
WAIT = "wait"
_MIN_SD = 1e-6
# fields the world model's bookkeeping sets (the clock, the end-of-game flags): never sampled
_BOOKKEEPING = frozenset({"/day", "/step", "/horizon", "/bankrupt", "/game_over"})


def _is_value(v: Any) -> bool:
    return isinstance(v, (bool, int, float)) and not (isinstance(v, float) and not math.isfinite(v))


def _get(state: Any, toks: Sequence[str]) -> Any:
    cur = state
    for t in toks:
        cur = cur[int(t)] if isinstance(cur, list) else cur[t]
    return cur


def _replace(state: dict, toks: Sequence[str], value: Any) -> None:
    """Set ``state[toks...] = value`` copying the containers on the way (``state`` itself is owned)."""
    cur = state
    for t in toks[:-1]:
        key = int(t) if isinstance(cur, list) else t
        child = cur[key]
        child = list(child) if isinstance(child, list) else dict(child)
        cur[key] = child
        cur = child
    last = toks[-1]
    cur[int(last) if isinstance(cur, list) else last] = value


def _pointer(toks: Sequence[str]) -> str:
    return "/" + "/".join(t.replace("~", "~0").replace("/", "~1") for t in toks)


# -- data layout ---------------------------------------------------------------------------------


def item_lists(state: dict) -> list[str]:
    """JSON pointers of every list of dicts in ``state`` (not descending into lists)."""
    out: list[str] = []

    def walk(o: Any, toks: list[str]) -> None:
        if isinstance(o, dict):
            for k, v in o.items():
                walk(v, toks + [k])
        elif isinstance(o, list) and o and all(isinstance(x, dict) for x in o):
            out.append(_pointer(toks))
    walk(state, [])
    return out


def scalar_leaves(state: dict) -> list[str]:
    """JSON pointers of every number or true/false value of ``state`` outside lists."""
    out: list[str] = []

    def walk(o: Any, toks: list[str]) -> None:
        if isinstance(o, dict):
            for k, v in o.items():
                walk(v, toks + [k])
        elif _is_value(o):
            out.append(_pointer(toks))
    walk(state, [])
    return out


def _is_quiet(rec: dict) -> bool:
    """A day on which no action changed the park (waiting, or a refused action)."""
    if not rec.get("valid", True):
        return True
    try:
        return coerce_action(rec["action"])["name"] == WAIT
    except Exception:  # noqa: BLE001 - an unreadable recorded action changed nothing
        return True


@dataclass
class ItemLayout:
    """How the items of one list are matched across a day and encoded as inputs."""

    pointer: str
    key: list[str] | None                    # fields matching an item across a day; None: list position
    numeric: list[tuple[str, float, float]]  # input fields: name, mean, sd (true/false as 0/1)
    strings: list[tuple[str, list]]          # input fields one-hot: name, categories
    targets: list[str] = field(default_factory=list)

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(c) for _, c in self.strings)

    def encode(self, items: Sequence[dict]) -> np.ndarray:
        out = np.zeros((len(items), self.width), dtype=np.float32)
        for j, (name, m, sd) in enumerate(self.numeric):
            v = np.fromiter((_num(it.get(name)) for it in items), dtype=np.float64, count=len(items))
            z = (v - m) / sd
            z[~np.isfinite(z)] = 0.0
            out[:, j] = np.clip(z, -Z_CLIP, Z_CLIP)  # an item unlike any in the data stays a bounded input
        col = len(self.numeric)
        for name, cats in self.strings:
            idx = {c: i for i, c in enumerate(cats)}
            for r, it in enumerate(items):
                k = idx.get(it.get(name))
                if k is not None:
                    out[r, col + k] = 1.0
            col += len(cats)
        return out

    def match(self, prev: Sequence[dict], nxt: Sequence[dict]) -> list[tuple[dict, dict]]:
        if self.key is None:
            if len(prev) != len(nxt):
                return []
            return [(a, b) for a, b in zip(prev, nxt)
                    if all(a.get(k) == b.get(k) for k in ("subtype", "subclass"))]
        index = {tuple(a.get(k) for k in self.key): a for a in prev}
        pairs = []
        for b in nxt:
            a = index.get(tuple(b.get(k) for k in self.key))
            if a is not None:
                pairs.append((a, b))
        return pairs

    def to_dict(self) -> dict:
        return {"pointer": self.pointer, "key": self.key, "numeric": self.numeric, "strings": self.strings,
                "targets": self.targets}

    @classmethod
    def from_dict(cls, d: dict) -> "ItemLayout":
        return cls(d["pointer"], d["key"], [tuple(x) for x in d["numeric"]], [(a, list(b)) for a, b in d["strings"]],
                   list(d["targets"]))


@dataclass
class FieldModel:
    """The fitted conditional of one item or scalar field."""

    name: str                 # "<list pointer>/*/<field>" or the scalar's pointer
    kind: str                 # "numeric" or "categorical" (true/false)
    integer: bool
    low: float                # the data's range of the field (numeric)
    high: float
    stats: tuple[float, float]  # mean and sd of the standardised daily change (numeric)
    prev_stats: tuple[float, float]  # mean and sd of the level (scalar fields' input)
    model: Conditional | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "integer": self.integer, "low": self.low, "high": self.high,
                "stats": list(self.stats), "prev_stats": list(self.prev_stats)}


# -- the model -------------------------------------------------------------------------------------


class IndependentFields:
    """Independent conditionals for every stochastic field outside the network (module docstring)."""

    def __init__(self, spec: EnvSpec):
        self.spec = spec
        self.spec_net = None           # a BayesNet without edges over the other spec variables, or None
        self.encoder: Encoder | None = None
        self.lists: list[ItemLayout] = []
        self.items: dict[str, FieldModel] = {}    # item fields by name
        self.scalars: dict[str, FieldModel] = {}  # scalar fields by pointer
        self.seed = 0
        self.settings = FitSettings()
        self.provenance: dict = {}
        self.clip_counts: dict[str, int] = {}

    # -- fitting ------------------------------------------------------------------------------
    @classmethod
    def fit(cls, spec: EnvSpec, train: Any, val: Any, exclude: Sequence[str] = (), seed: int = 0,
            keys: Mapping[str, Sequence[str] | None] | None = None, skip: Sequence[str] = ("x", "y", "target"),
            skip_lists: Sequence[str] = (), min_change: float = 0.01, max_rows: int = 20_000,
            fit_kwargs: dict | None = None, progress: bool = False) -> "IndependentFields":
        """Fit the conditionals on ``train`` (early stopping on ``val``).

        ``exclude``: spec variables modelled elsewhere (the network's nodes; variables a bookkeeping rule sets,
        such as the park's ``bankrupt``).  ``keys``: per list pointer, the fields that identify an item across a
        day (``None``: its position); lists not named are matched by ``x`` and ``y`` when their items have them,
        else by position.  ``skip``: item fields never modelled nor used as inputs; ``skip_lists``: lists left
        alone.  ``max_rows``: training rows per pooled field (a seeded subsample beyond it).
        """
        train, val = as_records(train), as_records(val)
        if not train or not val:
            raise ValueError(f"need training and validation transitions (got {len(train)} and {len(val)})")
        if min_change < 0 or min_change >= 1:
            raise ValueError(f"min_change must be in [0, 1), got {min_change!r}")
        self = cls(spec)
        self.seed = int(seed)
        self.settings = FitSettings.from_kwargs(fit_kwargs)
        known = set(spec.variable_names())
        bad = [n for n in exclude if n not in known]
        if bad:
            raise ValueError(f"exclude names unknown variables {bad}")
        others = [v.name for v in spec.stochastic if v.name not in set(exclude)]
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(desc="independent fields", unit="field")
        if others:
            from .bn import BayesNet
            net = BayesNet(spec, {}, nodes=others, seed=self.seed, **(fit_kwargs or {}))
            net.fit(train, val)
            self.spec_net = net
            self.encoder = net.encoder
            if bar is not None:
                bar.update(len(others))
        else:
            self.encoder = Encoder(spec, [], delta=self.settings.delta_targets).fit(train)
        x_tr, x_va = self.encoder.exogenous(train), self.encoder.exogenous(val)
        rng = np.random.default_rng(self.seed)
        var_paths = {v.path for v in spec.variables}
        keys = dict(keys or {})
        quiet = [r for r in train if _is_quiet(r)] or train

        # item lists
        pointers = sorted({p for r in train[:: max(1, len(train) // 50)] + train[-1:]
                           for p in item_lists(r["next_state"])})
        for ptr in pointers:
            if ptr in skip_lists or ptr in var_paths:
                continue
            lay = self._layout(ptr, train, keys, skip)
            changes: dict[str, list[int]] = {}
            for r in quiet:
                for a, b in lay.match(_safe_list(r["state"], ptr), _safe_list(r["next_state"], ptr)):
                    for f in lay_fields(lay):
                        c = changes.setdefault(f, [0, 0])
                        c[1] += 1
                        c[0] += a.get(f) != b.get(f)
            lay.targets = [f for f in lay_fields(lay) if changes.get(f, [0, 0])[1]
                           and changes[f][0] / changes[f][1] >= max(min_change, 1e-12)]
            if not lay.targets:
                continue
            tr = _item_rows(lay, train, x_tr)
            va = _item_rows(lay, val, x_va)
            if tr is None or va is None:
                continue
            for f in lay.targets:
                fm = _fit_field(f"{ptr}/*/{f}", tr, va, f, lay, rng, max_rows, self.settings, self.seed)
                if fm is not None:
                    self.items[fm.name] = fm
                if bar is not None:
                    bar.update(1)
            lay.targets = [f for f in lay.targets if f"{ptr}/*/{f}" in self.items]
            if lay.targets:
                self.lists.append(lay)

        # scalar leaves outside the spec's variables
        leaves = sorted({p for p in scalar_leaves(train[-1]["next_state"]) if p not in var_paths})
        for ptr in leaves:
            toks = pointer_tokens(ptr)
            if ptr in _BOOKKEEPING:
                continue
            n = moved = 0
            for r in quiet:
                try:
                    a, b = _get(r["state"], toks), _get(r["next_state"], toks)
                except (KeyError, IndexError, TypeError, ValueError):
                    continue
                n += 1
                moved += a != b
            if not n or moved / n < max(min_change, 1e-12):
                continue
            fm = _fit_scalar(ptr, toks, train, val, x_tr, x_va, self.settings, self.seed)
            if fm is not None:
                self.scalars[ptr] = fm
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        self.provenance = {"n_train": len(train), "n_val": len(val), "exclude": list(exclude),
                           "spec_variables": others, "item_fields": sorted(self.items),
                           "scalar_fields": sorted(self.scalars), "data": _data_key(train, val)}
        return self

    def _layout(self, ptr: str, train: list[dict], keys: dict, skip: Sequence[str]) -> ItemLayout:
        items = [it for r in train for it in _safe_list(r["next_state"], ptr)]
        first = items[0] if items else {}
        if ptr in keys:
            key = list(keys[ptr]) if keys[ptr] is not None else None
        else:
            key = ["x", "y"] if "x" in first and "y" in first else None
        numeric, strings = [], []
        names = list(dict.fromkeys(k for it in items[:2000] for k in it))
        for name in names:
            if name in skip:
                continue
            vals = [it.get(name) for it in items]
            if all(v is None or _is_value(v) for v in vals):
                x = np.array([_num(v) for v in vals], dtype=np.float64)
                x = x[np.isfinite(x)]
                if x.size:
                    numeric.append((name, float(x.mean()), float(max(x.std(), 1.0 if x.std() == 0 else _MIN_SD))))
            elif all(v is None or isinstance(v, str) for v in vals):
                cats = sorted({v for v in vals if v is not None})
                if 0 < len(cats) <= 32:
                    strings.append((name, cats))
        return ItemLayout(ptr, key, numeric, strings)

    # -- sampling -----------------------------------------------------------------------------
    def _check(self) -> None:
        if self.encoder is None:
            raise RuntimeError("IndependentFields is not fitted: call IndependentFields.fit(...) or load(dir)")

    @property
    def spec_nodes(self) -> list[str]:
        return list(self.spec_net.nodes) if self.spec_net is not None else []

    def encode(self, prev_states: Sequence[dict], actions: Sequence[Any], next_det: Sequence[dict],
               valid: Sequence[bool] | None = None) -> np.ndarray:
        self._check()
        return self.encoder.encode_exogenous(prev_states, actions, next_det, valid)

    def sample_spec(self, x: np.ndarray, generator: torch.Generator) -> dict[str, np.ndarray]:
        """The independent spec variables from the encoded block (category values for categorical ones)."""
        if self.spec_net is None:
            return {}
        out = self.spec_net.sample_array(x, generator)
        for v in self.spec_net.nodes:
            if self.spec_net.models[v].kind == "categorical":
                out[v] = np.array(self.spec_net.encoder.categories[v], dtype=object)[out[v]]
        return out

    @property
    def last_clip_counts(self) -> dict[str, int]:
        return dict(self.spec_net.last_clip_counts) if self.spec_net is not None else {}

    @torch.no_grad()
    def write_fields(self, states: list[dict], x: np.ndarray, generator: torch.Generator) -> dict[str, int]:
        """Sample every item and scalar field of ``states`` (the next states, holding the post-action
        values) and write them in, copying what is written into.  Returns counts for the run log."""
        counts: dict[str, int] = {}
        if not states:
            return counts
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
        for lay in self.lists:
            toks = pointer_tokens(lay.pointer)
            lists, rows = [], []
            for i, s in enumerate(states):
                try:
                    lst = _get(s, toks)
                except (KeyError, IndexError, TypeError, ValueError):
                    lst = None
                if isinstance(lst, list) and lst:
                    lists.append((i, lst))
                    rows.extend([i] * len(lst))
            if not rows:
                continue
            flat = [it for _, lst in lists for it in lst]
            inp = torch.cat([xt[torch.as_tensor(rows)], torch.as_tensor(lay.encode(flat))], dim=1)
            new = {f: self._draw(self.items[f"{lay.pointer}/*/{f}"], inp,
                                 [it.get(f) for it in flat], generator, counts) for f in lay.targets}
            k = 0
            for i, lst in lists:
                copied = []
                for it in lst:
                    c = dict(it)
                    for f in lay.targets:
                        c[f] = new[f][k]
                    copied.append(c)
                    k += 1
                _replace(states[i], toks, copied)
        for ptr, fm in self.scalars.items():
            toks = pointer_tokens(ptr)
            prev = []
            for s in states:
                try:
                    prev.append(_get(s, toks))
                except (KeyError, IndexError, TypeError, ValueError):
                    prev.append(None)
            have = [i for i, v in enumerate(prev) if v is not None]
            if not have:
                continue
            m, sd = fm.prev_stats
            z = np.array([(_num(prev[i]) - m) / sd for i in have], dtype=np.float32)
            z[~np.isfinite(z)] = 0.0
            z = np.clip(z, -Z_CLIP, Z_CLIP)
            inp = torch.cat([xt[torch.as_tensor(have)], torch.as_tensor(z).unsqueeze(1)], dim=1)
            vals = self._draw(fm, inp, [prev[i] for i in have], generator, counts)
            for i, v in zip(have, vals):
                _replace(states[i], toks, v)
        return counts

    def _draw(self, fm: FieldModel, inp: torch.Tensor, prev: list, g: torch.Generator, counts: dict) -> list:
        u = torch.rand(inp.shape[0], generator=g)
        if fm.kind == "categorical":
            idx = fm.model.sample(inp, u).numpy()
            return [bool(i) for i in idx.tolist()]
        t = fm.model.sample(inp, u).double().numpy()
        p = np.array([_num(v) for v in prev], dtype=np.float64)
        m, sd = fm.stats
        raw = p + t * sd + m
        bad = ~np.isfinite(raw)
        if bad.any():
            counts[f"nonfinite:{fm.name}"] = counts.get(f"nonfinite:{fm.name}", 0) + int(bad.sum())
            raw = np.where(bad, p, raw)
            raw = np.where(np.isfinite(raw), raw, fm.low)
        out = (raw < fm.low) | (raw > fm.high)
        if out.any():
            counts[f"clipped:{fm.name}"] = counts.get(f"clipped:{fm.name}", 0) + int(out.sum())
            self.clip_counts[fm.name] = self.clip_counts.get(fm.name, 0) + int(out.sum())
            raw = np.clip(raw, fm.low, fm.high)
        if fm.integer:
            return np.rint(raw).astype(np.int64).tolist()
        return raw.tolist()

    def sample(self, prev_states: Sequence[dict], actions: Sequence[Any], next_det: Sequence[dict],
               rng: Any = None, valid: Sequence[bool] | None = None) -> dict[str, np.ndarray]:
        """The independent spec variables alone (the stochastic-model interface of the world model)."""
        from .bn import _generator
        return self.sample_spec(self.encode(prev_states, actions, next_det, valid), _generator(rng))

    # -- description --------------------------------------------------------------------------
    def table(self):
        """One row per modelled field: kind, what it is, the data's range and the validation loss."""
        import pandas as pd
        rows = []
        for v in self.spec_nodes:
            m = self.spec_net.models[v]
            var = self.spec.variable(v)
            rows.append({"field": v, "kind": "spec variable", "type": m.kind, "low": var.low, "high": var.high,
                         "val_loss": m.val_loss, "train_rows": m.info.get("n_train")})
        for group, fms in (("item field", self.items), ("scalar field", self.scalars)):
            for fm in fms.values():
                rows.append({"field": fm.name, "kind": group, "type": "true/false" if fm.kind == "categorical"
                             else ("integer" if fm.integer else "numeric"), "low": fm.low, "high": fm.high,
                             "val_loss": fm.model.val_loss, "train_rows": fm.model.info.get("n_train")})
        return pd.DataFrame(rows)

    def fingerprint(self) -> str:
        blob = json.dumps({"prov": self.provenance, "seed": self.seed, "settings": self.settings.key()},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return (f"IndependentFields({self.spec.name}: {len(self.spec_nodes)} spec variables, {len(self.items)} item "
                f"fields in {len(self.lists)} lists, {len(self.scalars)} scalar fields)")

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory: str | Path, **extra: Any) -> Path:
        """Write the nets and ``fields.json`` (last, so its presence marks a complete save)."""
        self._check()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if self.spec_net is not None:
            self.spec_net.save(d / "spec_variables")
        files = {}
        for i, fm in enumerate(list(self.items.values()) + list(self.scalars.values())):
            name = f"field{i}.pt"
            tmp = d / f".{name}.tmp"
            torch.save(fm.model.net.state_dict(), tmp)
            os.replace(tmp, d / name)
            files[fm.name] = name
        meta = {"format": FORMAT, "env": self.spec.name, "seed": self.seed, "settings": json.loads(self.settings.key()),
                "encoder": self.encoder.to_dict(), "lists": [lay.to_dict() for lay in self.lists],
                "items": [fm.to_dict() for fm in self.items.values()],
                "scalars": [fm.to_dict() for fm in self.scalars.values()], "files": files,
                "conditionals": {fm.name: fm.model.config() for fm in list(self.items.values())
                                 + list(self.scalars.values())},
                "has_spec_net": self.spec_net is not None,
                "provenance": _provenance("none (fitted on data, no LLM)", **{**self.provenance, **extra})}
        atomic_write_text(d / "fields.json", json.dumps(meta, indent=1, default=str))
        return d

    @classmethod
    def load(cls, directory: str | Path, spec: EnvSpec) -> "IndependentFields":
        d = Path(directory)
        path = d / "fields.json"
        if not path.exists():
            raise FileNotFoundError(f"no saved independent fields at {d} (fields.json missing)")
        meta = json.loads(path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: unsupported format {meta.get('format')!r}")
        if meta["env"] != spec.name:
            raise ValueError(f"{path} was fitted for {meta['env']!r}, not {spec.name!r}")
        self = cls(spec)
        self.seed = int(meta["seed"])
        self.settings = FitSettings.from_kwargs(meta["settings"])
        if meta.get("has_spec_net"):
            from .bn import BayesNet
            self.spec_net = BayesNet.load(d / "spec_variables", spec=spec)
            self.encoder = self.spec_net.encoder
        else:
            self.encoder = Encoder.from_dict(spec, meta["encoder"])
        self.lists = [ItemLayout.from_dict(x) for x in meta["lists"]]
        for group, target in (("items", self.items), ("scalars", self.scalars)):
            for fd in meta[group]:
                fm = FieldModel(fd["name"], fd["kind"], bool(fd["integer"]), float(fd["low"]), float(fd["high"]),
                                tuple(fd["stats"]), tuple(fd["prev_stats"]))
                state = torch.load(d / meta["files"][fm.name], weights_only=True)
                fm.model = Conditional.from_config(meta["conditionals"][fm.name], state)
                target[fm.name] = fm
        self.provenance = dict(meta.get("provenance") or {})
        return self


def lay_fields(lay: ItemLayout) -> list[str]:
    """Candidate target fields of a list: its numeric and true/false input fields."""
    return [n for n, _, _ in lay.numeric]


def _safe_list(state: dict, ptr: str) -> list:
    try:
        v = get_path(state, ptr)
    except (KeyError, IndexError, TypeError, ValueError):
        return []
    return v if isinstance(v, list) else []


def _item_rows(lay: ItemLayout, recs: list[dict], x: np.ndarray):
    """Matched (transition row, previous item, next item) triples of one list, encoded."""
    rows, prev, nxt = [], [], []
    for i, r in enumerate(recs):
        for a, b in lay.match(_safe_list(r["state"], lay.pointer), _safe_list(r["next_state"], lay.pointer)):
            rows.append(i)
            prev.append(a)
            nxt.append(b)
    if not rows:
        return None
    return {"x": x[np.asarray(rows)], "items": lay.encode(prev), "prev": prev, "next": nxt}


def _targets(name: str, prev: list, nxt: list) -> tuple[str, np.ndarray, np.ndarray, bool, np.ndarray]:
    """kind, target level values, previous values, integer?, mask of usable rows."""
    pv = [a for a in prev]
    nv = [b for b in nxt]
    if all(isinstance(v, bool) for v in nv if v is not None) and any(isinstance(v, bool) for v in nv):
        y = np.array([1 if v else 0 for v in nv], dtype=np.int64)
        mask = np.array([isinstance(v, bool) for v in nv])
        return "categorical", y, np.zeros(len(nv)), False, mask
    y = np.array([_num(v) for v in nv], dtype=np.float64)
    p = np.array([_num(v) for v in pv], dtype=np.float64)
    mask = np.isfinite(y) & np.isfinite(p)
    integer = all(isinstance(v, int) and not isinstance(v, bool) for v in nv if v is not None)
    return "numeric", y, p, integer, mask


def _fit_field(name: str, tr: dict, va: dict, f: str, lay: ItemLayout, rng: np.random.Generator, max_rows: int,
               settings: FitSettings, seed: int) -> FieldModel | None:
    parts = {}
    for split, d in (("train", tr), ("val", va)):
        kind, y, p, integer, mask = _targets(name, [a.get(f) for a in d["prev"]], [b.get(f) for b in d["next"]])
        idx = np.flatnonzero(mask)
        cap = max_rows if split == "train" else max(1, max_rows // 4)
        if idx.size > cap:
            idx = np.sort(rng.choice(idx, size=cap, replace=False))
        parts[split] = (kind, y[idx], p[idx], integer, np.concatenate([d["x"][idx], d["items"][idx]], axis=1))
    kind, y_tr, p_tr, integer, x_tr = parts["train"]
    _, y_va, p_va, _, x_va = parts["val"]
    if len(y_tr) < 2 or len(y_va) < 1:
        return None
    if kind == "categorical":
        model = fit_conditional(name, "categorical", x_tr, y_tr, x_va, y_va, n_classes=2, settings=settings,
                                seed=node_seed(seed, name))
        return FieldModel(name, kind, False, 0.0, 1.0, (0.0, 1.0), (0.0, 1.0), model)
    d_tr = y_tr - p_tr
    m, sd = float(d_tr.mean()), float(max(d_tr.std(), _MIN_SD))
    model = fit_conditional(name, "numeric", x_tr, ((d_tr - m) / sd).astype(np.float32), x_va,
                            (((y_va - p_va) - m) / sd).astype(np.float32), settings=settings,
                            seed=node_seed(seed, name))
    lo, hi = float(min(y_tr.min(), p_tr.min())), float(max(y_tr.max(), p_tr.max()))
    return FieldModel(name, kind, integer, lo, hi, (m, sd), (0.0, 1.0), model)


def _fit_scalar(ptr: str, toks: list[str], train: list[dict], val: list[dict], x_tr: np.ndarray, x_va: np.ndarray,
                settings: FitSettings, seed: int) -> FieldModel | None:
    def column(recs: list[dict]):
        p, y = [], []
        for r in recs:
            try:
                p.append(_get(r["state"], toks))
                y.append(_get(r["next_state"], toks))
            except (KeyError, IndexError, TypeError, ValueError):
                p.append(None)
                y.append(None)
        return p, y
    p_tr, y_tr = column(train)
    p_va, y_va = column(val)
    kind, yt, pt, integer, mt = _targets(ptr, p_tr, y_tr)
    _, yv, pv, _, mv = _targets(ptr, p_va, y_va)
    if mt.sum() < 2 or mv.sum() < 1:
        return None
    if kind == "categorical":
        pz_tr = np.array([1.0 if v else 0.0 for v in p_tr], dtype=np.float32)[mt]
        pz_va = np.array([1.0 if v else 0.0 for v in p_va], dtype=np.float32)[mv]
        model = fit_conditional(ptr, "categorical", np.concatenate([x_tr[mt], pz_tr[:, None]], axis=1), yt[mt],
                                np.concatenate([x_va[mv], pz_va[:, None]], axis=1), yv[mv], n_classes=2,
                                settings=settings, seed=node_seed(seed, ptr))
        return FieldModel(ptr, kind, False, 0.0, 1.0, (0.0, 1.0), (0.0, 1.0), model)
    lv = np.concatenate([pt[mt], yt[mt]])
    pm, psd = float(lv.mean()), float(max(lv.std(), 1.0 if lv.std() == 0 else _MIN_SD))
    d = yt[mt] - pt[mt]
    m, sd = float(d.mean()), float(max(d.std(), _MIN_SD))
    xin_tr = np.concatenate([x_tr[mt], ((pt[mt] - pm) / psd)[:, None]], axis=1).astype(np.float32)
    xin_va = np.concatenate([x_va[mv], ((pv[mv] - pm) / psd)[:, None]], axis=1).astype(np.float32)
    model = fit_conditional(ptr, "numeric", xin_tr, ((d - m) / sd).astype(np.float32), xin_va,
                            (((yv[mv] - pv[mv]) - m) / sd).astype(np.float32), settings=settings,
                            seed=node_seed(seed, ptr))
    return FieldModel(ptr, kind, integer, float(lv.min()), float(lv.max()), (m, sd), (pm, psd), model)


def _data_key(train: list[dict], val: list[dict]) -> str:
    h = hashlib.sha256()
    for recs in (train, val):
        h.update(str(len(recs)).encode())
        for r in recs[:: max(1, len(recs) // 200)]:
            h.update(json.dumps([r.get("traj_id"), r.get("t"), r["action"], r["next_state"].get("money")
                                 if isinstance(r["next_state"], dict) else None], default=str).encode())
    return h.hexdigest()[:16]


# -- a network plus the independent fields ----------------------------------------------------------


class WithIndependentFields:
    """A fitted network (the six variables) and :class:`IndependentFields` (everything else) as one
    stochastic model of :class:`~cassandra_wm.world_model.WorldModel` (see the module docstring)."""

    def __init__(self, network: Any, fields: IndependentFields):
        overlap = set(getattr(network, "nodes", ())) & set(fields.spec_nodes)
        if overlap:
            raise ValueError(f"the network and the independent fields both model {sorted(overlap)}")
        self.network = network
        self.fields = fields
        self._shared = _same_encoding(getattr(network, "encoder", None), fields.encoder)
        self._pending: tuple | None = None

    @property
    def guarded_nodes(self) -> list[str]:
        return list(self.network.nodes)

    @property
    def provenance(self) -> dict:
        prov = dict(getattr(self.network, "provenance", {}) or {})
        prov["independent_fields"] = self.fields.fingerprint()
        return prov

    @property
    def last_clip_counts(self) -> dict[str, int]:
        return {**(getattr(self.network, "last_clip_counts", None) or {}), **self.fields.last_clip_counts}

    def sample(self, prev_states: Sequence[dict], actions: Sequence[Any], next_det: Sequence[dict],
               rng: Any = None, valid: Sequence[bool] | None = None) -> dict[str, np.ndarray]:
        from .bn import _generator
        g = _generator(rng)
        x = self.network.encoder.encode_exogenous(prev_states, actions, next_det, valid)
        out = self.network.sample_array(x, g)
        for v in self.network.nodes:
            if self.network.models[v].kind == "categorical":
                out[v] = np.array(self.network.encoder.categories[v], dtype=object)[out[v]]
        xf = x if self._shared else self.fields.encode(prev_states, actions, next_det, valid)
        out.update(self.fields.sample_spec(xf, g))
        self._pending = (xf, g, len(prev_states))
        return out

    def write_fields(self, states: list[dict]) -> dict[str, int]:
        """Fill the item and scalar fields of the states just sampled (same rows as the last ``sample``)."""
        if self._pending is None or self._pending[2] != len(states):
            raise RuntimeError("write_fields must follow sample() on the same rows")
        x, g, _ = self._pending
        self._pending = None
        return self.fields.write_fields(states, x, g)

    def __getstate__(self) -> dict:
        d = dict(self.__dict__)
        d["_pending"] = None
        return d

    def __getattr__(self, name: str) -> Any:  # parents, nodes, models, encoder ... of the network
        if name in ("network", "fields", "_shared", "_pending"):
            raise AttributeError(name)
        return getattr(self.network, name)

    def __repr__(self) -> str:
        return f"WithIndependentFields({self.network!r}, {self.fields!r})"


def _same_encoding(a: Encoder | None, b: Encoder | None) -> bool:
    """Do two fitted encoders give the same shared block (same layout and statistics)?"""
    if a is None or b is None:
        return False
    try:
        da, db = a.to_dict(), b.to_dict()
    except Exception:  # noqa: BLE001 - an unfitted encoder
        return False
    keys = ("num_stats", "categories", "arg_stats", "feature_names")
    return all(json.dumps(da.get(k), sort_keys=True, default=str) == json.dumps(db.get(k), sort_keys=True, default=str)
               for k in keys)


__all__ = ["IndependentFields", "WithIndependentFields", "ItemLayout", "FieldModel", "item_lists", "scalar_leaves"]
