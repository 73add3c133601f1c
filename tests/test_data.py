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
