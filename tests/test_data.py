"""Data collection, storage schema, splits and loaders."""
import json

import numpy as np
import pandas as pd
import pytest

from cassandra_wm import data
from cassandra_wm.agents import make_agent
from cassandra_wm.envs import make_env


@pytest.fixture(scope="module")
def records():
    return data.collect("coffee_shop", "heuristic", n_trajectories=12, horizon=15, seed=3, progress=False,
                        invalid_rate=0.2)


def test_collect_shape_and_determinism(records):
    assert len(records) == 12 * 15  # the heuristic does not go bankrupt in 15 days
    assert set(records[0]) == set(data.RECORD_KEYS)
    again = data.collect("coffee_shop", "heuristic", n_trajectories=12, horizon=15, seed=3, progress=False,
                         invalid_rate=0.2)
    assert again == records
    other = data.collect("coffee_shop", "heuristic", n_trajectories=12, horizon=15, seed=4, progress=False,
                         invalid_rate=0.2)
    assert other != records


def test_records_chain_and_flags(records):
    by_traj = {}
    for r in records:
        by_traj.setdefault(r["traj_id"], []).append(r)
    for traj in by_traj.values():
        assert [r["t"] for r in traj] == list(range(len(traj)))
        for a, b in zip(traj, traj[1:]):
            assert a["next_state"] == b["state"]
        assert traj[-1]["done"] and not any(r["done"] for r in traj[:-1])
    invalid = [r for r in records if not r["valid"]]
    assert invalid and all(isinstance(r["error"], str) and r["error"] for r in invalid)
    assert all(r["error"] is None for r in records if r["valid"])
    assert all(isinstance(r["action_text"], str) for r in records)


def test_collect_accepts_env_and_agent_objects():
    env = make_env("coffee_shop", horizon=5)
    agent = make_agent(env, "random", invalid_rate=0.0)
    recs = data.collect(env, agent, n_trajectories=3, horizon=5, seed=0, progress=False)
    assert 3 <= len(recs) <= 15
    with pytest.raises(ValueError):
        data.collect(env, agent, n_trajectories=0, horizon=5)
    with pytest.raises(TypeError):
        data.collect(env, object(), n_trajectories=1, horizon=5)


def test_roundtrip(records, tmp_path):
    path = tmp_path / "transitions.jsonl"
    side = data.save_transitions(records, path, meta={"env": "coffee_shop", "seed": 3})
    assert side["counts"]["records"] == len(records) and side["counts"]["trajectories"] == 12
    assert data.meta_path(path).exists()
    assert data.load_records(path) == records
    df = data.load_transitions(path)
    assert len(df) == len(records)
    assert list(df.columns[:len(data.RECORD_KEYS)]) == list(data.RECORD_KEYS)
    assert isinstance(df["state"].iloc[0], dict) and isinstance(df["action"].iloc[0], dict)
    assert set(df["split"]) <= {"train", "val", "test"}
    flat = data.flatten(df, make_env("coffee_shop").spec)
    for v in ["money", "customers", "price", "upgrade_level"]:
        assert v in flat and "next_" + v in flat
    assert flat["next_money"].iloc[0] == records[0]["next_state"]["money"]
    assert flat["action_name"].iloc[0] == records[0]["action"]["name"]


def test_splits_by_trajectory_disjoint():
    s = data.split_trajectories(range(100), seed=0)
    assert [len(s[k]) for k in ("train", "val", "test")] == [90, 5, 5]
    assert set(s["train"]) | set(s["val"]) | set(s["test"]) == set(range(100))
    assert not (set(s["train"]) & set(s["val"])) and not (set(s["train"]) & set(s["test"]))
    assert not (set(s["val"]) & set(s["test"]))
    assert data.split_trajectories(range(100), seed=0) == s
    assert data.split_trajectories(range(100), seed=1) != s
    small = data.split_trajectories(range(20), seed=0)
    assert [len(small[k]) for k in ("train", "val", "test")] == [18, 1, 1]
    with pytest.raises(ValueError):
        data.split_trajectories(range(10), val_fraction=0.6, test_fraction=0.5)


def test_load_split_filters_whole_trajectories(records, tmp_path):
    path = tmp_path / "transitions.jsonl"
    side = data.save_transitions(records, path)
    parts = {k: data.load_transitions(path, split=k) for k in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == len(records)
    for k, p in parts.items():
        assert set(p["traj_id"]) == set(side["splits"][k])
        assert (p["split"] == k).all()
    with pytest.raises(ValueError):
        data.load_records(path, split="holdout")


def test_corrupt_line_names_file_and_line(records, tmp_path):
    path = tmp_path / "transitions.jsonl"
    data.save_transitions(records, path)
    lines = path.read_text().splitlines()
    lines[6] = lines[6].replace('"valid":', '"valid" ', 1)  # a missing colon
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(data.DataFileError) as e:
        data.load_transitions(path)
    assert str(path) in str(e.value) and ":7:" in str(e.value)


def test_truncated_file_names_file_and_line(records, tmp_path):
    path = tmp_path / "transitions.jsonl"
    data.save_transitions(records, path)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # cut mid-record
    with pytest.raises(data.DataFileError) as e:
        data.load_records(path)
    n_lines = len(text[: len(text) // 2].split("\n"))
    assert str(path) in str(e.value) and f":{n_lines}:" in str(e.value) and "truncated" in str(e.value)


def test_missing_lines_detected_by_sidecar(records, tmp_path):
    path = tmp_path / "transitions.jsonl"
    data.save_transitions(records, path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-3]) + "\n")  # cut at a line boundary
    with pytest.raises(data.DataFileError, match="sidecar"):
        data.load_records(path)


def test_bad_record_shape_and_missing_files(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"traj_id": 0, "t": 0}) + "\n")
    with pytest.raises(data.DataFileError, match=r"x\.jsonl:1: record lacks"):
        data.load_records(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(data.DataFileError, match=r"x\.jsonl:1"):
        data.load_records(path)
    with pytest.raises(data.DataFileError, match="not found"):
        data.load_records(tmp_path / "nope.jsonl")
    with pytest.raises(data.DataFileError, match="sidecar"):
        data.load_records(path, split="train")


def test_dataset_path_uses_data_dir(monkeypatch, tmp_path):
    from cassandra_wm import paths
    monkeypatch.setattr(paths, "DATA", tmp_path / "data")
    p = data.dataset_path("coffee_shop", "quick")
    assert p == tmp_path / "data" / "quick" / "coffee_shop" / "transitions.jsonl"
    assert p.parent.is_dir()


def test_flatten_handles_dataframe_from_records(records):
    df = pd.DataFrame(records)
    flat = data.flatten(df, make_env("coffee_shop").spec)
    assert len(flat) == len(records)
    assert np.isfinite(flat["money"]).all()


# -- schema validation: every bad line fails with file, line and field -------------------------

@pytest.fixture
def saved(records, tmp_path):
    """A dataset written with its environment named in the sidecar, so states are checked by the spec."""
    path = tmp_path / "transitions.jsonl"
    data.save_transitions(records, path, meta={"env": "coffee_shop"})
    return path


def _edit_line(path, index, edit, keep_hash=False):
    """Rewrite one line (0-based) through ``edit(dict)``; optionally refresh the sidecar's sha256."""
    lines = path.read_text().splitlines()
    rec = json.loads(lines[index])
    edit(rec)
    lines[index] = json.dumps(rec)
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    if keep_hash:  # the sidecar agrees with the file: only the schema can catch the problem
        side = json.loads(data.meta_path(path).read_text())
        import hashlib
        side["sha256"] = hashlib.sha256(text.encode()).hexdigest()
        data.meta_path(path).write_text(json.dumps(side))


@pytest.mark.parametrize("edit, field, words", [
    (lambda r: r["state"].pop("money"), "state.money", "missing"),
    (lambda r: r["next_state"].update(customers="12"), "next_state.customers", "finite number"),
    (lambda r: r["state"].update(milk=None), "state.milk", "finite number"),
    (lambda r: r["state"].update(money=True), "state.money", "finite number"),
    (lambda r: r.update(valid="true"), "valid", "boolean"),
    (lambda r: r.update(traj_id="3"), "traj_id", "integer"),
    (lambda r: r.update(t=-1), "t", "greater than or equal"),
    (lambda r: r.update(error=7), "error", "string"),
    (lambda r: r.update(state=[1, 2]), "state", "dictionary"),
    (lambda r: r.update(extra=1), "extra", "extra"),
    (lambda r: r.pop("done"), "done", "lacks"),
])
def test_schema_errors_name_file_line_and_field(saved, edit, field, words):
    _edit_line(saved, 6, edit, keep_hash=True)
    with pytest.raises(data.DataFileError) as e:
        data.load_records(saved)
    msg = str(e.value)
    assert f"{saved}:7:" in msg and f"'{field}'" in msg and words in msg.lower(), msg


def test_nan_and_infinity_are_rejected(saved):
    lines = saved.read_text().splitlines()
    lines[2] = lines[2].replace('"money":', '"money":NaN,"was_money":', 1)
    saved.write_text("\n".join(lines) + "\n")
    with pytest.raises(data.DataFileError, match=r":3: NaN is not allowed"):
        data.load_records(saved)


def test_non_utf8_bytes_name_line_and_column(saved):
    raw = saved.read_bytes().split(b"\n")
    raw[3] = raw[3][:10] + b"\xff" + raw[3][10:]
    saved.write_bytes(b"\n".join(raw))
    with pytest.raises(data.DataFileError, match=r":4: not UTF-8 \(byte 0xff at column 11\)"):
        data.load_records(saved)


def test_edited_file_is_caught_by_the_sidecar_hash(saved):
    _edit_line(saved, 0, lambda r: r["state"].update(money=r["state"]["money"] + 1))
    with pytest.raises(data.DataFileError, match="sha256"):
        data.load_records(saved)


def test_sidecar_schema(saved):
    mp = data.meta_path(saved)
    good = json.loads(mp.read_text())
    cases = [
        ({k: v for k, v in good.items() if k != "splits"}, "lacks field 'splits'"),
        ({**good, "splits": {"train": [0], "val": [1]}}, "'splits.test'"),
        ({**good, "splits": {**good["splits"], "val": ["1"]}}, "'splits.val.0'"),
        ({**good, "counts": {**good["counts"], "records": "180"}}, "'counts.records'"),
        ({**good, "splits": {"train": [0, 1], "val": [1], "test": []}}, "both 'train' and 'val'"),
        ({**good, "splits": {"train": [0, 99], "val": [], "test": []}}, "not in transitions.jsonl: [99]"),
    ]
    for side, words in cases:
        mp.write_text(json.dumps(side))
        with pytest.raises(data.DataFileError) as e:
            data.load_records(saved, split="train")
        assert words in str(e.value), str(e.value)
    mp.write_bytes(b'{"schema_version": 1, "file": "\xff"}')
    with pytest.raises(data.DataFileError, match="not UTF-8"):
        data.load_meta(saved)


def test_valid_dataset_loads_with_spec_checks(saved, records):
    assert data.load_records(saved) == records
    assert len(data.load_transitions(saved, split="train")) > 0
