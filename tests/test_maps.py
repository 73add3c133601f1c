"""The ``maps`` backend against recorded exchanges with the real game (CI has no game installed)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cassandra_wm.envs import get_path, make_env
from cassandra_wm.envs.maps import client as C
from cassandra_wm.envs.maps.env import MapsEnv
from cassandra_wm.envs.maps.client import GameError, find_game_dir, observation_from_raw

FIXTURE = Path(__file__).parent / "fixtures" / "maps" / "the_line_episode.json"


def replay_transport(exchanges: list[dict]):
    """Answer requests with the recorded responses, in order, checking that each request matches."""
    queue = list(exchanges)

    def call(method, endpoint, payload):
        if not queue:
            raise AssertionError(f"unexpected request {method} {endpoint}")
        ex = queue.pop(0)
        assert (ex["method"], ex["endpoint"]) == (method, endpoint), (ex["method"], ex["endpoint"], method, endpoint)
        if payload and "parkId" in payload and ex["payload"]:
            assert {k: v for k, v in payload.items() if k != "parkId"} == \
                {k: v for k, v in ex["payload"].items() if k != "parkId"}
        return ex["status"], ex["body"]
    call.remaining = queue
    return call


@pytest.fixture()
def recorded():
    return json.loads(FIXTURE.read_text())


def test_recorded_episode_replays_with_the_same_outcomes(recorded):
    t = replay_transport(recorded["exchanges"])
    env = MapsEnv(layout=recorded["layout"], horizon=recorded["horizon"], transport=t)
    s = env.reset(recorded["seed"])
    spec = env.spec
    assert spec.name == "maps" and s["money"] == 500 and s["step"] == 0
    for a, exp in zip(recorded["actions"], recorded["expected"]):
        s, valid, info = env.step(a)
        assert valid == exp["valid"] and info["reason"] == exp["reason"] and info["error"] == exp["error"]
        assert s["money"] == exp["money"] and s["step"] == exp["step"]
        for v in spec.variables:  # every variable is found at its path and within its bounds
            assert v.in_bounds(get_path(s, v.path)), (v.name, get_path(s, v.path))
    assert env.is_done(s) and s["game_over"]
    assert s["rides"]["total_rides"] == 1 and s["rides"]["ride_list"][0]["subtype"] == "carousel"
    env.close()
    assert not t.remaining  # the park was deleted at the end, as recorded


def test_the_real_games_refusals_match_the_python_port(recorded):
    """The same literal texts get the same validity and reason from the port as from the real game."""
    port = make_env("theme_park", layout=recorded["layout"], parameters="game", horizon=recorded["horizon"])
    s = port.reset(0)
    for a, exp in zip(recorded["actions"], recorded["expected"]):
        s, valid, info = port.step(a)
        assert (valid, info["reason"]) == (exp["valid"], exp["reason"])
        assert info["error"] == exp["error"]


def test_observation_from_raw_has_the_ports_schema(recorded):
    raw = next(ex["body"]["data"] for ex in recorded["exchanges"] if ex["endpoint"] == "park/" and ex["status"] == 200)
    obs = observation_from_raw(raw, recorded["layout"])
    port = make_env("theme_park", layout=recorded["layout"], parameters="game").reset(0)

    def shape(d):
        return {k: (shape(v) if isinstance(v, dict) and k not in ("available_entities", "hidden") else type(v).__name__)
                for k, v in d.items()}
    assert set(obs) == set(port)
    assert set(obs["rides"]) == set(port["rides"]) and set(obs["staff"]) == set(port["staff"])
    assert set(obs["guests"]) == set(port["guests"]) and obs["paths"] == port["paths"]
    assert obs["entrance"] == port["entrance"] and obs["exit"] == port["exit"]


def test_missing_game_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("MAPS_GAME_DIR", raising=False)
    with pytest.raises(GameError, match="not configured.*npm install"):
        find_game_dir(None)
    with pytest.raises(GameError, match="not a Mini Amusement Parks checkout"):
        find_game_dir(tmp_path)
    (tmp_path / "map_backend").mkdir()
    (tmp_path / "map_backend" / "server.js").write_text("// stand-in")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "config.yaml").write_text("park_size: 20\n")
    with pytest.raises(GameError, match="npm install"):
        find_game_dir(tmp_path)
    (tmp_path / "node_modules" / "express").mkdir(parents=True)
    assert find_game_dir(tmp_path) == tmp_path
    monkeypatch.setattr(C.shutil, "which", lambda name: None)
    with pytest.raises(GameError, match="Node.js is not installed"):
        C.GameServer(tmp_path)
    env = MapsEnv(game_dir=str(tmp_path / "nowhere"))  # building the env starts nothing
    with pytest.raises(GameError, match="not a Mini Amusement Parks checkout"):
        env.reset(0)


def test_a_server_that_will_not_start_names_its_log(tmp_path):
    """A 'server' that exits at once: the error carries the start failure."""
    import shutil
    import sys
    node = tmp_path / "fake_node"
    node.write_text(f"#!{sys.executable}\nimport sys\nprint('boom: cannot find module express')\nsys.exit(3)\n")
    node.chmod(0o755)
    for d in ("map_backend", "shared", "node_modules/express"):
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
    (tmp_path / "map_backend" / "server.js").write_text("")
    (tmp_path / "shared" / "config.yaml").write_text("")
    srv = C.GameServer(tmp_path, node=str(node), start_timeout=10)
    with pytest.raises(GameError, match="exited at start.*boom"):
        srv.start()
    assert shutil.which  # the module stays usable


def test_a_game_that_dies_mid_run_raises_and_no_trajectory_is_returned(recorded):
    exchanges = recorded["exchanges"]
    n_ok = next(i for i, ex in enumerate(exchanges) if ex["endpoint"] == "park/proceed") + 1
    t = replay_transport(exchanges[:n_ok])

    def dying(method, endpoint, payload):
        if not t.remaining:
            raise GameError("lost contact with the game's server at http://127.0.0.1:1/v1/: connection refused")
        return t(method, endpoint, payload)
    from cassandra_wm import data
    from cassandra_wm.envs.theme_park.agents import HeuristicAgent

    env = MapsEnv(layout=recorded["layout"], horizon=3, transport=dying)
    env.reset = lambda seed=None, _r=env.reset: _r(recorded["seed"])  # the recorded seed
    with pytest.raises(GameError, match="failed while it .*lost contact"):
        data.collect(env, HeuristicAgent(seed=0), n_trajectories=1, horizon=3, progress=False)


def test_maps_is_registered_and_plays_through_the_registry(recorded):
    from cassandra_wm.envs.registry import get_kit, make_agent
    kit = get_kit("maps")
    assert kit.env_class() is MapsEnv
    env = MapsEnv(layout=recorded["layout"], horizon=recorded["horizon"],
                  transport=replay_transport(recorded["exchanges"]))
    agent = make_agent(env, "heuristic", seed=0)
    s = env.reset(recorded["seed"])
    a = agent.act(s, np.random.default_rng(0))
    assert env.check_action(s, a)[1] is None
    with pytest.raises(GameError, match="arbitrary state"):
        env.transition(s, a, np.random.default_rng(0))
