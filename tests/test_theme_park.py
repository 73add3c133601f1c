"""Theme park simulator: published parameters, accounting, invariants, determinism, invalid actions."""
from __future__ import annotations

import json
from collections import deque

import numpy as np
import pytest

from cassandra_wm.envs import make_env
from cassandra_wm.envs.base import format_action, get_path, parse_action
from cassandra_wm.envs.theme_park import ThemeParkEnv, TRUE_GRAPH
from cassandra_wm.envs.theme_park import params as P
from cassandra_wm.envs.theme_park.actions import REASONS, apply_action
from cassandra_wm.envs.theme_park.agents import HeuristicAgent, RandomAgent, free_spots, make_agent
from cassandra_wm.envs.theme_park.layouts import LAYOUTS, TEST_LAYOUTS, TRAIN_LAYOUTS, get_layout
from cassandra_wm.envs.theme_park.sim import simulate_day, transition
from cassandra_wm.envs.theme_park.state import initial_state

# --- the published tables, typed in from appendix F of the paper -------------------------------
# ride: (build cost, cost per run, capacity, top ticket price, excitement, intensity, breakdown chance)
PAPER_RIDES = {
    ("carousel", "yellow"): (250, 1, 7, 3, 1, 1, 0.001),
    ("carousel", "blue"): (1250, 2, 14, 6, 4, 5, 0.002),
    ("carousel", "green"): (7500, 16, 26, 7, 2, 4, 0.003),
    ("carousel", "red"): (15000, 12, 18, 11, 7, 5, 0.005),
    ("ferris_wheel", "yellow"): (500, 6, 10, 4, 3, 2, 0.006),
    ("ferris_wheel", "blue"): (3750, 8, 22, 5, 6, 3, 0.009),
    ("ferris_wheel", "green"): (37500, 40, 42, 9, 5, 7, 0.023),
    ("ferris_wheel", "red"): (55000, 28, 24, 12, 9, 8, 0.018),
    ("roller_coaster", "yellow"): (1000, 10, 5, 15, 4, 6, 0.01),
    ("roller_coaster", "blue"): (10000, 25, 8, 20, 8, 8, 0.02),
    ("roller_coaster", "green"): (30000, 40, 16, 18, 6, 9, 0.03),
    ("roller_coaster", "red"): (75000, 50, 10, 50, 10, 10, 0.033),
}
# shop: (building cost, operating cost per day, max item price, {effects})
PAPER_SHOPS = {
    ("drink", "yellow"): (100, 16, 2, {"thirst_reduction": 0.5}),
    ("drink", "blue"): (1750, 75, 6, {"thirst_reduction": 0.9}),
    ("drink", "green"): (17500, 280, 10, {"thirst_reduction": 0.8, "happiness_boost": 0.4}),
    ("drink", "red"): (48000, 600, 15, {"thirst_reduction": 0.4, "energy_boost": 50, "caffeinated_steps": 50}),
    ("food", "yellow"): (150, 28, 4, {"hunger_reduction": 0.4}),
    ("food", "blue"): (3000, 150, 10, {"hunger_reduction": 0.8}),
    ("food", "green"): (32000, 500, 18, {"hunger_reduction": 0.6, "thirst_reduction": 0.6}),
    ("food", "red"): (60000, 1000, 25, {"hunger_reduction": 0.9, "happiness_boost": 0.5}),
    ("specialty", "yellow"): (250, 80, 12, {"happiness_boost": 0.3}),
    ("specialty", "blue"): (10000, 200, 5, {}),
    ("specialty", "green"): (50000, 500, 2, {"money_withdrawal": 50}),
    ("specialty", "red"): (10000, 0, 0, {"thirst_boost": 0.5, "hunger_boost": 0.5}),
}
PAPER_SALARY = {"janitor": 100, "mechanic": 25}


def test_published_parameters_exact():
    assert (P.GRID_SIZE, P.TICKS_PER_DAY, P.HORIZON, P.START_MONEY) == (20, 500, 50, 500)
    assert {(s, c) for s in P.RIDES for c in P.RIDES[s]} == set(PAPER_RIDES)
    for (s, c), (cost, op, cap, mx, exc, inten, br) in PAPER_RIDES.items():
        p = P.RIDES[s][c]
        assert (p["building_cost"], p["cost_per_operation"], p["capacity"], p["max_price"], p["excitement"],
                p["intensity"], p["breakdown_rate"]) == (cost, op, cap, mx, exc, inten, br), (s, c)
    assert {(s, c) for s in P.SHOPS for c in P.SHOPS[s]} == set(PAPER_SHOPS)
    for (s, c), (cost, op, mx, eff) in PAPER_SHOPS.items():
        p = P.SHOPS[s][c]
        assert (p["building_cost"], p["operating_cost"], p["max_price"]) == (cost, op, mx), (s, c)
        assert {k: v for k, v in p.items() if k in P.SHOP_EFFECTS} == eff, (s, c)
    assert {k: v["salary"] for k, v in P.STAFF.items()} == PAPER_SALARY
    assert (P.ATM_MIN_WITHDRAWAL, P.BILLBOARD_ATM_MONEY) == (5, 20)


def test_manual_states_the_tables():
    env = ThemeParkEnv()
    L = env.spec.manual
    for (s, c), (cost, op, cap, mx, exc, inten, br) in PAPER_RIDES.items():
        assert f"| {s} | {c} | {cost:g} | {op:g} | {cap:g} | {mx:g} | {exc:g} | {inten:g} | {br:g} |" in L
    for (s, c), (cost, op, mx, _) in PAPER_SHOPS.items():
        assert f"| {s} | {c} | {cost:g} | {op:g} | {mx:g} |" in L
    assert "$100 a day" in L and "$25 a day" in L and "$500" in L


# --- helpers ---------------------------------------------------------------------------------------

def place(x, y, kind, sub, col=None, price=None):
    args = {"x": x, "y": y, "type": kind, "subtype": sub}
    if col is not None:
        args["subclass"] = col
    if price is not None:
        args["price"] = price
    return {"name": "place", "args": args}


def built_state(layout="loop", money=100_000.0, rides=(("carousel", "yellow"), ("ferris_wheel", "blue")),
                shops=(("drink", "yellow"), ("food", "yellow")), staff=(), rating=50.0):
    s = initial_state(get_layout(layout))
    s["money"] = 10_000_000.0
    spots = free_spots(s)
    i = 0
    for kind, items in (("ride", rides), ("shop", shops)):
        table = P.RIDES if kind == "ride" else P.SHOPS
        for sub, col in items:
            x, y = spots[i]
            i += 1
            s, ok, err, _ = apply_action(s, place(x, y, kind, sub, col, min(table[sub][col]["max_price"], 10)))
            assert ok, err
    for k, sub in enumerate(staff):
        x, y = s["paths"][(5 * k) % len(s["paths"])]
        s, ok, err, _ = apply_action(s, place(x, y, "staff", sub))
        assert ok, err
    s["park_rating"] = rating
    s["money"] = money
    return s


def run_agent(env, agent, days, seed=0):
    s = env.reset(seed)
    rng = np.random.default_rng(seed + 1)
    out = [(None, s, True, {})]
    for _ in range(days):
        a = agent.act(s, rng)
        s, v, info = env.step(a)
        out.append((a, s, v, info))
        if info["done"]:
            break
    return out


# --- spec ------------------------------------------------------------------------------------------

def test_spec_paths_bounds_and_bn_variables():
    env = make_env("theme_park", layout="straight")
    spec = env.spec
    s = env.reset(0)
    for v in spec.variables:
        assert v.in_bounds(get_path(s, v.path)), v.name
    bn = spec.bn_variables
    assert len(bn) == 6 and len(set(bn)) == 6
    for name in bn:
        assert spec.variable(name).kind == "stochastic"
    for name in ("num_rides", "total_capacity", "park_value", "daily_fixed_costs", "action_cost"):
        assert spec.variable(name).kind == "deterministic"
    # the true graph lives among the six and is acyclic
    edges = env.true_graph()
    assert edges == list(TRUE_GRAPH) and edges
    assert all(a in bn and b in bn and a != b for a, b in edges)
    indeg = {n: 0 for n in bn}
    for _, b in edges:
        indeg[b] += 1
    queue, seen = deque([n for n in bn if indeg[n] == 0]), 0
    while queue:
        n = queue.popleft()
        seen += 1
        for a, b in edges:
            if a == n:
                indeg[b] -= 1
                if indeg[b] == 0:
                    queue.append(b)
    assert seen == len(bn), "true graph has a cycle"
    assert {a.name for a in spec.actions} == {"place", "remove", "modify", "move", "wait"}


# --- layouts ---------------------------------------------------------------------------------------

def test_layouts_connected_and_split():
    assert len(LAYOUTS) >= 10 and len(TRAIN_LAYOUTS) == 7 and len(TEST_LAYOUTS) == 3
    assert not set(TRAIN_LAYOUTS) & set(TEST_LAYOUTS)
    shapes = set()
    for lay in LAYOUTS.values():
        tiles = set(lay.paths)
        assert lay.entrance in tiles and lay.exit in tiles and lay.entrance != lay.exit
        for x, y in (lay.entrance, lay.exit):
            assert x in (0, 19) or y in (0, 19), f"{lay.name}: gates must be on the border"
        seen, todo = {lay.entrance}, [lay.entrance]
        while todo:
            x, y = todo.pop()
            for n in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
                if n in tiles and n not in seen:
                    seen.add(n)
                    todo.append(n)
        assert seen == tiles, f"{lay.name}: not every path tile is reachable"
        assert free_spots(initial_state(lay)), lay.name
        shapes.add(frozenset(tiles))
    assert len(shapes) == len(LAYOUTS)
    env = ThemeParkEnv(split="test")
    assert {env.reset(seed)["layout"] for seed in range(3)} == set(TEST_LAYOUTS)
    assert ThemeParkEnv(layout="hook").reset(5)["layout"] == "hook"


# --- actions and validity ------------------------------------------------------------------------------

def test_each_invalid_reason_is_produced():
    s = built_state(money=600.0, staff=("janitor",))
    spot = free_spots(s)[0]
    path = tuple(s["paths"][3])
    ride = s["rides"][0]
    far = next((x, y) for x in range(20) for y in range(20)
               if all([x + dx, y + dy] not in s["paths"] for dx in (-1, 0, 1) for dy in (-1, 0, 1)))
    cases = {
        "malformed": "place(x=1, y=",
        "unknown_action": "build(x=1, y=2)",
        "bad_argument": {"name": "place", "args": {"x": 1.5, "y": 2, "type": "ride", "subtype": "carousel",
                                                   "subclass": "yellow", "price": 1}},
        "unknown_kind": place(*spot, "ride", "bumper_cars", "yellow", 1),
        "out_of_bounds": place(20, 3, "ride", "carousel", "yellow", 1),
        "occupied": place(ride["x"], ride["y"], "shop", "drink", "yellow", 1),
        "not_adjacent_to_path": place(*far, "shop", "drink", "yellow", 1),
        "not_on_path": place(*spot, "staff", "mechanic"),
        "not_affordable": place(*spot, "ride", "roller_coaster", "red", 10),
        "negative_price": place(*spot, "ride", "carousel", "yellow", -1),
        "price_above_max": place(*spot, "ride", "carousel", "yellow", 4),
        "no_attraction": {"name": "remove", "args": {"x": spot[0], "y": spot[1], "type": "shop"}},
        "no_staff": {"name": "move", "args": {"x": spot[0], "y": spot[1], "new_x": path[0], "new_y": path[1]}},
    }
    assert set(cases) | {"game_over"} == set(REASONS)
    env = ThemeParkEnv(layout="loop")
    for reason, action in cases.items():
        before = json.dumps(s, sort_keys=True)
        after, ok, err, why = apply_action(s, action)
        assert not ok and why == reason and isinstance(err, str) and err, (reason, err, why)
        assert json.dumps(s, sort_keys=True) == before, "apply_action must not touch its input"
        # the environment reports the same reason, and the day still runs
        nxt, valid, info = env.transition(s, action, np.random.default_rng(0))
        assert not valid and info["reason"] == reason and info["error"]
        assert nxt["day"] == s["day"] + 1 and nxt["num_rides"] == s["num_rides"]
    over = dict(s, game_over=True, bankrupt=True)
    nxt, valid, info = env.transition(over, {"name": "wait", "args": {}}, np.random.default_rng(0))
    assert not valid and info["reason"] == "game_over" and info["done"] and nxt["day"] == s["day"]


@pytest.mark.parametrize("bad", [None, 42, [], {}, {"name": 3}, {"name": "wait", "args": [1]}, "", "   ",
                                 "place(1, 2)", "place(**x)", "wait(", "import os", "place(x=[1], y=2, type='ride')",
                                 {"name": "place", "args": {"x": 1, "y": 2, "type": ["ride"], "subtype": "carousel"}},
                                 {"name": "modify", "args": {"x": 1, "y": 2, "price": "cheap"}},
                                 {"name": "move", "args": {"x": 1e400, "y": 0, "new_x": 0, "new_y": 0}},
                                 {"name": "wait", "args": {"please": True}}])
def test_bad_input_never_raises(bad):
    env = ThemeParkEnv(layout="straight")
    env.reset(0)
    s, valid, info = env.step(bad)
    assert valid is False and isinstance(info["error"], str) and info["error"]
    assert s["day"] == 1


def test_text_actions_parse_and_apply():
    text = "place(x=1, y=9, type='ride', subtype='carousel', subclass='yellow', price=2)"
    act = parse_action(text)
    assert act == {"name": "place", "args": {"x": 1, "y": 9, "type": "ride", "subtype": "carousel",
                                             "subclass": "yellow", "price": 2}}
    assert parse_action(format_action(act)) == act
    env = ThemeParkEnv(layout="straight")
    env.reset(0)
    s, valid, info = env.step(text)
    assert valid, info
    assert s["num_rides"] == 1 and s["rides"][0]["price"] == 2.0 and s["action_cost"] == 250.0
    # spaces in kind names are accepted ("ferris wheel")
    s2, ok, err, _ = apply_action(dict(s, money=5000.0), "place(x=2, y=9, type='ride', subtype='ferris wheel', subclass='yellow', price=4)")
    assert ok, err


def test_deterministic_step_matches_action_effects():
    s = initial_state(get_layout("straight"))
    a = place(3, 9, "shop", "drink", "yellow", 2)
    det, ok, err = ThemeParkEnv.deterministic_step(s, a)
    assert ok and err is None
    assert det["money"] == 400.0 and det["action_cost"] == 100.0 and det["num_shops"] == 1
    assert det["daily_fixed_costs"] == 16.0 and det["park_value"] == 100.0 and det["day"] == 0
    # selling refunds half the building cost; modify changes only the price
    det2, ok, _ = ThemeParkEnv.deterministic_step(det, {"name": "modify", "args": {"x": 3, "y": 9, "price": 1}})
    assert ok and det2["shops"][0]["price"] == 1.0 and det2["money"] == 400.0
    det3, ok, _ = ThemeParkEnv.deterministic_step(det2, {"name": "remove", "args": {"x": 3, "y": 9, "type": "shop"}})
    assert ok and det3["money"] == 450.0 and det3["action_cost"] == -50.0 and det3["num_shops"] == 0
    # invalid: unchanged apart from a zero action cost
    det4, ok, err = ThemeParkEnv.deterministic_step(s, place(3, 9, "ride", "roller_coaster", "red", 1))
    assert not ok and "costs" in err and det4["money"] == 500.0 and det4["num_rides"] == 0
    # staff: hired onto paths, moved along them, dismissed
    det5, ok, _ = ThemeParkEnv.deterministic_step(s, place(4, 10, "staff", "janitor"))
    assert ok and det5["num_janitors"] == 1 and det5["daily_fixed_costs"] == 100.0 and det5["money"] == 500.0
    det6, ok, _ = ThemeParkEnv.deterministic_step(det5, {"name": "move", "args": {"x": 4, "y": 10, "new_x": 9, "new_y": 10}})
    assert ok and (det6["staff"][0]["x"], det6["staff"][0]["y"]) == (9, 10)
    det7, ok, _ = ThemeParkEnv.deterministic_step(det6, {"name": "remove", "args": {"x": 9, "y": 10, "type": "staff",
                                                                                      "subtype": "janitor"}})
    assert ok and det7["num_staff"] == 0


# --- accounting ------------------------------------------------------------------------------------

def _check_day_accounts(prev, nxt):
    c = lambda v: int(round(v * 100))  # noqa: E731
    assert c(nxt["money"]) == c(prev["money"]) - c(nxt["action_cost"]) + c(nxt["revenue"]) - c(nxt["expenses"])
    assert c(nxt["profit"]) == c(nxt["revenue"]) - c(nxt["expenses"])
    assert c(nxt["revenue"]) == c(nxt["ride_revenue"]) + c(nxt["shop_revenue"])
    assert c(nxt["ride_revenue"]) == sum(c(r["revenue_today"]) for r in nxt["rides"])
    assert c(nxt["shop_revenue"]) == sum(c(s["revenue_today"]) for s in nxt["shops"])
    assert c(nxt["expenses"]) == c(nxt["ride_operating_costs"]) + c(nxt["shop_operating_costs"]) + c(nxt["salaries"])
    # published costs, charged as published
    assert c(nxt["ride_operating_costs"]) == sum(
        r["operations_today"] * c(P.RIDES[r["subtype"]][r["subclass"]]["cost_per_operation"]) for r in nxt["rides"])
    assert c(nxt["shop_operating_costs"]) == sum(
        c(P.SHOPS[s["subtype"]][s["subclass"]]["operating_cost"]) for s in nxt["shops"])
    assert c(nxt["salaries"]) == sum(c(P.STAFF[s["subtype"]]["salary"]) for s in nxt["staff"])
    # tickets and items are sold at the set price
    for r in nxt["rides"]:
        assert c(r["revenue_today"]) == r["riders_today"] * c(r["price"])
    for s in nxt["shops"]:
        assert c(s["revenue_today"]) == s["customers_today"] * c(s["price"])


@pytest.mark.parametrize("kind,invalid_rate,layout,days", [("heuristic", 0.0, "loop", 25),
                                                           ("random", 0.2, "cross", 25)])
def test_money_balances_to_the_cent(kind, invalid_rate, layout, days):
    env = ThemeParkEnv(layout=layout)
    agent = make_agent(kind, env, invalid_rate=invalid_rate, seed=3)
    traj = run_agent(env, agent, days, seed=3)
    start = traj[0][1]
    for (_, prev, _, _), (a, nxt, valid, info) in zip(traj[:-1], traj[1:]):
        _check_day_accounts(prev, nxt)
        if valid and a is not None:
            # building costs are the published ones
            act = parse_action(a) if isinstance(a, str) else a
            if act["name"] == "place" and act["args"]["type"] in ("ride", "shop"):
                table = P.RIDES if act["args"]["type"] == "ride" else P.SHOPS
                assert nxt["action_cost"] == table[act["args"]["subtype"]][act["args"]["subclass"]]["building_cost"]
    end = traj[-1][1]
    total = sum(int(round(100 * (t[1]["revenue"] - t[1]["expenses"] - t[1]["action_cost"]))) for t in traj[1:])
    assert int(round(100 * end["money"])) == int(round(100 * start["money"])) + total


# --- invariants ------------------------------------------------------------------------------------

def _check_invariants(s, spec):
    paths = {tuple(p) for p in s["paths"]}
    tiles = [(a["x"], a["y"]) for a in s["rides"] + s["shops"]]
    assert len(tiles) == len(set(tiles)), "two attractions on one tile"
    for x, y in tiles:
        assert (x, y) not in paths
        assert any((x + dx, y + dy) in paths for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)))
    for st in s["staff"]:
        assert (st["x"], st["y"]) in paths, "staff off the paths"
    assert s["peak_guests"] <= s["total_capacity"]
    assert s["guests_today"] == sum(s["guests_left"].values())
    for r in s["rides"]:
        assert r["riders_today"] <= r["operations_today"] * r["capacity"], "a ride carried more than its capacity"
        assert 0.0 <= r["uptime_today"] <= 1.0
    assert all(0.0 <= v <= 1.0 for row in s["cleanliness"] for v in row)
    for v in spec.variables:
        assert v.in_bounds(get_path(s, v.path)), (v.name, get_path(s, v.path))
    assert s["num_rides"] == len(s["rides"]) and s["num_staff"] == len(s["staff"])
    assert s["total_capacity"] == sum(r["capacity"] for r in s["rides"])


def test_invariants_over_runs():
    for kind, layout, seed in (("heuristic", "zigzag", 1), ("random", "hook", 2)):
        env = ThemeParkEnv(layout=layout)
        traj = run_agent(env, make_agent(kind, env, invalid_rate=0.3, seed=seed), 20, seed=seed)
        for _, s, _, _ in traj:
            _check_invariants(s, env.spec)
            json.dumps(s)


def test_big_park_day_invariants():
    s = built_state(rides=tuple((P.RIDE_TYPES[i % 3], P.COLOURS[i % 4]) for i in range(12)),
                    shops=tuple((sub, col) for sub in P.SHOP_TYPES for col in P.COLOURS),
                    staff=("janitor", "mechanic"), rating=80.0)
    rng = np.random.default_rng(7)
    spec = ThemeParkEnv().spec
    for _ in range(3):
        s = simulate_day(s, rng)
        _check_invariants(s, spec)
        assert s["guests_today"] > 100
        assert s["peak_guests"] == s["total_capacity"], "a busy park should fill up"


# --- determinism and the Markov property -------------------------------------------------------------

def test_same_seed_same_trajectory():
    runs = []
    for _ in range(2):
        env = ThemeParkEnv(layout="comb")
        traj = run_agent(env, RandomAgent(invalid_rate=0.2, seed=5), 12, seed=9)
        runs.append(json.dumps([(a, s, v) for a, s, v, _ in traj], sort_keys=True))
    assert runs[0] == runs[1]
    env = ThemeParkEnv(layout="comb")
    other = run_agent(env, RandomAgent(invalid_rate=0.2, seed=5), 12, seed=10)
    assert json.dumps([(a, s, v) for a, s, v, _ in other], sort_keys=True) != runs[0]


def test_transition_from_json_state_is_the_same_step():
    env = ThemeParkEnv(layout="loop")
    s = env.reset(4)
    agent = HeuristicAgent()
    for _ in range(6):
        s, _, _ = env.step(agent.act(s))
    a = agent.act(s)
    rng_state = env.rng.bit_generator.state
    stepped, v1, i1 = env.step(a)
    rng = np.random.default_rng()
    rng.bit_generator.state = rng_state
    frozen = json.loads(json.dumps(env_state_before := s))
    oracle, v2, i2 = transition(frozen, a, rng)
    assert json.dumps(oracle, sort_keys=True) == json.dumps(stepped, sort_keys=True)
    assert (v1, i1) == (v2, i2)
    assert env_state_before == frozen, "transition must not modify its input"


# --- behaviour of the engine --------------------------------------------------------------------------

def test_no_rides_no_guests_and_rating_moves():
    s = built_state(rides=(), shops=(("drink", "yellow"),))
    nxt = simulate_day(s, np.random.default_rng(0))
    assert nxt["guests_today"] == 0 and nxt["revenue"] == 0.0 and nxt["total_capacity"] == 0
    assert nxt["money"] == s["money"] - 16.0
    busy = simulate_day(built_state(rating=30.0), np.random.default_rng(0))
    assert busy["guests_today"] > 0 and busy["revenue"] > 0 and busy["park_rating"] != 30.0


def test_mechanics_repair_and_breakdowns_cost_uptime():
    s = built_state(rides=(("carousel", "yellow"), ("roller_coaster", "yellow")), rating=50.0)
    for r in s["rides"]:
        r["broken"] = True
    rng = np.random.default_rng(1)
    left = simulate_day(s, rng)
    assert left["broken_rides"] == 2 and left["uptime"] == 0.0 and left["ride_revenue"] == 0.0
    with_mech, ok, _, _ = apply_action(s, place(*s["paths"][0], "staff", "mechanic"))
    assert ok
    fixed = simulate_day(with_mech, np.random.default_rng(1))
    assert fixed["broken_rides"] < 2 and fixed["uptime"] > 0.0 and fixed["ride_revenue"] > 0.0


def test_janitors_clean():
    s = built_state(rides=(("carousel", "yellow"),), shops=())
    for x, y in s["paths"]:
        s["cleanliness"][y][x] = 0.3
    dirty = simulate_day(s, np.random.default_rng(2))
    with_jan, ok, _, _ = apply_action(s, place(*s["paths"][len(s["paths"]) // 2], "staff", "janitor"))
    with_jan, ok2, _, _ = apply_action(with_jan, place(*s["paths"][0], "staff", "janitor"))
    assert ok and ok2
    cleaned = simulate_day(with_jan, np.random.default_rng(2))
    assert cleaned["mean_cleanliness"] > dirty["mean_cleanliness"] + 0.05
    assert cleaned["salaries"] == 200.0


def test_prices_above_what_guests_carry_sell_nothing():
    s = built_state(rides=(("roller_coaster", "red"),), shops=())
    s["rides"][0]["price"] = 50.0   # guests carry at most $40 (see params.CHOICES)
    nxt = simulate_day(s, np.random.default_rng(3))
    assert nxt["guests_today"] > 0 and nxt["ride_revenue"] == 0.0


def test_heuristic_beats_random():
    env = ThemeParkEnv(layout="l_shape")
    h = run_agent(env, HeuristicAgent(), 15, seed=0)[-1][1]
    assert not h["bankrupt"] and h["money"] > 500 and h["num_rides"] >= 3
    broke = 0
    for seed in range(6):
        env = ThemeParkEnv(layout="l_shape")
        r = run_agent(env, RandomAgent(invalid_rate=0.2, seed=seed), 15, seed=seed)[-1][1]
        broke += r["bankrupt"] or r["money"] < h["money"]
    assert broke >= 5


def test_random_agent_invalid_rate():
    env = ThemeParkEnv(layout="cross")
    s = env.reset(0)
    s, _, _ = env.step(place(9, 1, "ride", "carousel", "yellow", 3))
    rng = np.random.default_rng(0)
    bad = RandomAgent(invalid_rate=1.0)
    good = RandomAgent(invalid_rate=0.0)
    for _ in range(15):
        assert not apply_action(s, bad.act(s, rng))[1]
        assert apply_action(s, good.act(s, rng))[1]


def test_render_draws_a_park():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cassandra_wm.envs.theme_park.render import render_park
    s = built_state(staff=("janitor", "mechanic"))
    s["rides"][0]["broken"] = True
    s["cleanliness"][0][0] = 0.2
    ax = render_park(s)
    assert ax.get_title() and len(ax.patches) > len(s["paths"])
    fig, ax2 = plt.subplots()
    assert render_park(s, ax=ax2) is ax2
    plt.close("all")


# --- the heuristic agent uses every action ------------------------------------------------------------

def test_heuristic_sends_every_action_kind_validly():
    from collections import Counter
    from cassandra_wm.envs.theme_park.actions import ACTIONS
    valid, invalid = Counter(), Counter()
    for k, layout in enumerate(("loop", "cross", "comb")):
        env = ThemeParkEnv(layout=layout, horizon=40)
        traj = run_agent(env, HeuristicAgent(), 40, seed=k)
        assert not traj[-1][1]["bankrupt"], layout
        for a, _, ok, _ in traj[1:]:
            (valid if ok else invalid)[a["name"]] += 1
    assert not invalid, f"with invalid_rate 0 every action should be accepted: {dict(invalid)}"
    assert set(valid) == set(ACTIONS), f"kinds never accepted: {set(ACTIONS) - set(valid)}"
    assert valid["wait"] >= 0.05 * sum(valid.values()), dict(valid)


def _one_ride_park(price, riders, operations=10):
    s = built_state(rides=(("carousel", "blue"),), shops=())
    r = s["rides"][0]
    r.update(price=price, riders_today=riders, operations_today=operations, revenue_today=riders * price)
    s["guests_today"] = 100
    return s, r


def test_heuristic_price_changes_follow_demand():
    agent = HeuristicAgent(tweak_rate=1.0)   # only a price change is possible in this park
    cap = P.RIDES["carousel"]["blue"]["max_price"]
    for seed in range(5):
        rng = np.random.default_rng(seed)
        s, r = _one_ride_park(price=3.0, riders=140)             # full runs: raise
        a = agent.act(s, rng)
        assert a["name"] == "modify" and (a["args"]["x"], a["args"]["y"]) == (r["x"], r["y"])
        assert 3.0 < a["args"]["price"] <= cap and apply_action(s, a)[1]
        s, r = _one_ride_park(price=cap, riders=5)               # nearly empty runs: lower
        a = agent.act(s, rng)
        assert a["name"] == "modify" and cap / 2 <= a["args"]["price"] < cap and apply_action(s, a)[1]
    s, _ = _one_ride_park(price=cap / 2, riders=5)              # already at the floor: nothing to change
    assert agent.act(s, np.random.default_rng(0))["name"] != "modify"


def test_heuristic_sells_a_loser_or_waits_when_short_of_cash():
    s = built_state(money=60.0)
    s["profit"] = -40.0
    food = next(x for x in s["shops"] if x["subtype"] == "food")
    for x in s["shops"]:
        x["revenue_today"] = 0.0 if x is food else 100.0
    a = HeuristicAgent().act(s, np.random.default_rng(0))
    assert a["name"] == "remove"
    assert (a["args"]["x"], a["args"]["y"], a["args"]["type"]) == (food["x"], food["y"], "shop")
    after, ok, _, _ = apply_action(s, a)
    assert ok and after["action_cost"] < 0 and after["num_shops"] == 1
    food["revenue_today"] = 100.0                                # nothing loses money: save the cash
    assert HeuristicAgent().act(s, np.random.default_rng(0))["name"] == "wait"


def test_heuristic_moves_a_mechanic_to_a_broken_ride():
    s = built_state(staff=("mechanic",))
    ride = s["rides"][0]
    ride["broken"] = True
    far = max(s["paths"], key=lambda p: abs(p[0] - ride["x"]) + abs(p[1] - ride["y"]))
    s["staff"][0]["x"], s["staff"][0]["y"] = far
    moves = [a for a in (HeuristicAgent().act(s, np.random.default_rng(k)) for k in range(10)) if a["name"] == "move"]
    assert moves
    for a in moves:
        new = (a["args"]["new_x"], a["args"]["new_y"])
        assert abs(new[0] - ride["x"]) + abs(new[1] - ride["y"]) == 1 and apply_action(s, a)[1]


def test_heuristic_in_a_full_park_waits_or_makes_room():
    s = initial_state(get_layout("straight"))
    s["money"] = 10_000_000.0
    for x, y in free_spots(s):
        s, ok, err, _ = apply_action(s, place(x, y, "ride", "carousel", "yellow", 3))
        assert ok, err
    s["money"] = 100_000.0
    assert not free_spots(s)
    names = set()
    for k in range(30):
        a = HeuristicAgent().act(s, np.random.default_rng(k))
        assert apply_action(s, a)[1] and a["name"] in ("wait", "remove"), a
        names.add(a["name"])
    assert names == {"wait", "remove"}


def test_invalid_actions_break_the_named_rule_with_every_action_kind():
    from cassandra_wm.envs.theme_park.agents import INVALID_KINDS, make_invalid
    s = built_state(money=600.0, staff=("janitor", "mechanic"))
    names = set()
    for kind in INVALID_KINDS:
        for k in range(12):
            a = make_invalid(s, kind, np.random.default_rng(k))
            assert a is not None, kind
            _, ok, _, reason = apply_action(s, a)
            assert not ok
            assert reason in (("unknown_action", "bad_argument") if kind == "malformed" else (kind,)), (kind, a, reason)
            names.add(a["name"])
    assert {"place", "modify", "remove", "move"} <= names


def test_heuristic_constructor_stays_compatible():
    env = ThemeParkEnv(layout="loop")
    agent = make_agent("heuristic", env, invalid_rate=0.1, seed=0)
    assert isinstance(agent, HeuristicAgent) and agent.invalid_rate == 0.1
    old_style = HeuristicAgent(env.spec, 0.0, 1, 12.0, 2.0)    # spec, invalid_rate, seed, price_cap, reserve_days
    assert (old_style.price_cap, old_style.reserve_days) == (12.0, 2.0)
    assert {"tweak_rate", "save_days", "price_cap"} <= set(agent.describe())
    with pytest.raises(ValueError):
        HeuristicAgent(tweak_rate=1.5)
