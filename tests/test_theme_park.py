"""The theme park: the real game's rules, action text and observation JSON, in Python."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cassandra_wm.envs import format_action, get_path, make_env
from cassandra_wm.envs.theme_park import TRUE_GRAPH, ThemeParkEnv
from cassandra_wm.envs.theme_park import params as P
from cassandra_wm.envs.theme_park.actions import REASONS, apply_action
from cassandra_wm.envs.theme_park.agents import INVALID_KINDS, HeuristicAgent, RandomAgent, make_invalid
from cassandra_wm.envs.theme_park.layouts import LAYOUTS, TEST_LAYOUTS, TRAIN_LAYOUTS
from cassandra_wm.envs.theme_park.sim import park_rating, routes_for, transition
from cassandra_wm.envs.theme_park.state import free_sites, initial_state

CAROUSEL = "place(x={x}, y={y}, type='ride', subtype='carousel', subclass='yellow', price={p})"


def carousel_at(s, k=0, price=3):
    x, y = free_sites(s)[k]
    return CAROUSEL.format(x=x, y=y, p=price)


# -- parameter tables ----------------------------------------------------------------

def test_paper_tables_are_appendix_f():
    p = P.get_params("paper")
    # a sample of appendix F, typed in from the paper
    assert p.rides["carousel"]["yellow"] == dict(building_cost=250, cost_per_operation=1, capacity=7,
                                                 max_ticket_price=3, excitement=1, intensity=1, breakdown_rate=0.001)
    assert p.rides["roller_coaster"]["red"]["max_ticket_price"] == 50
    assert p.rides["ferris_wheel"]["green"]["capacity"] == 42
    assert p.shops["food"]["red"]["operating_cost"] == 1000 and p.shops["drink"]["yellow"]["max_item_price"] == 2
    assert p.shops["specialty"]["green"]["money_withdrawal"] == 50
    assert p.staff["janitor"]["yellow"]["salary"] == 100 and p.staff["mechanic"]["yellow"]["salary"] == 25
    assert p.shop_costs == "fixed" and p.bankruptcy


def test_game_tables_are_the_games_configuration_and_differ():
    g, p = P.get_params("game"), P.get_params("paper")
    assert g.rides["carousel"]["yellow"]["capacity"] == 6 and g.rides["carousel"]["yellow"]["max_ticket_price"] == 4
    assert g.shops["drink"]["blue"]["item_cost"] == 1 and g.staff["janitor"]["red"]["salary"] == 2000
    assert set(g.staff) == {"janitor", "mechanic", "specialist"} and len(g.staff["specialist"]) == 4
    assert g.shop_costs == "items" and not g.bankruptcy
    rows_g = {(r["kind"], r["subtype"], r["subclass"]) for r in P.table_rows("game")}
    assert len(rows_g) == 12 + 12 + 12 and len(P.table_rows("paper")) == 12 + 12 + 2
    assert g.rides["ferris_wheel"]["red"] != p.rides["ferris_wheel"]["red"]
    with pytest.raises(ValueError, match="unknown parameter set"):
        P.get_params("hard")


# -- layouts -------------------------------------------------------------------------

def test_the_games_layouts_seven_for_training_three_held_out():
    assert len(TRAIN_LAYOUTS) == 7 and TEST_LAYOUTS == ("ribs", "the_islands", "zig_zag")
    assert set(LAYOUTS) == set(TRAIN_LAYOUTS) | set(TEST_LAYOUTS)
    for name, lay in LAYOUTS.items():
        s = initial_state(lay)
        rt = routes_for(s)
        ent = lay.entrance[0] * 20 + lay.entrance[1]
        assert rt.dist[ent, lay.exit[0] * 20 + lay.exit[1]] > 0, name
        if lay.split == "train":  # (the_islands has path islands guests cannot reach, as in the game)
            assert all(rt.dist[ent, x * 20 + y] >= 0 for x, y in lay.paths), name
    env = ThemeParkEnv(split="test")
    assert {env.reset(k)["hidden"]["layout"] for k in range(3)} == set(TEST_LAYOUTS)


# -- actions: the game's grammar, validity and reasons -----------------------------------------

@pytest.fixture(params=["paper", "game"])
def park(request):
    env = ThemeParkEnv(layout="the_fork", parameters=request.param, horizon=8)
    s = env.reset(3)
    s, ok, _ = env.step(carousel_at(s, price=3))
    assert ok
    return env, s


def test_the_games_refusals_and_their_reasons(park):
    env, s = park
    x, y = free_sites(s)[0]
    r = s["rides"]["ride_list"][0]
    px, py = s["paths"][0]["x"], s["paths"][0]["y"]
    cases = {
        "wait": "malformed",
        "place(x=1, y=": "malformed",
        "noop()": "unknown_action",
        f"place(x={x}, y={y}, type='ride', subtype='ferris wheel', subclass='yellow', price=1)": "unknown_kind",
        f"place(x={x}, y={y}, type='ride', subtype='carousel', subclass='yellow', price=2.0)": "bad_argument_type",
        f"place(x={x}, y={y}, type='ride', subtype='carousel', subclass='yellow')": "missing_argument",
        f"place(x={x}, y={y}, type='shop', subtype='drink', subclass='yellow', price=1)": "missing_argument",
        f"place(x={px}, y={py}, type='staff', subtype='janitor')": "missing_argument",
        f"remove(x={r['x']}, y={r['y']}, type='ride')": "missing_argument",
        "wait(days=2)": "extra_argument",
        f"place(x={x}, y={y}, type='ride', subtype='carousel', subclass='yellow', price=99)": "price_above_max",
        f"place(x={x}, y={y}, type='ride', subtype='carousel', subclass='yellow', price=-1)": "negative_price",
        f"place(x={x}, y={y}, type='ride', subtype='roller_coaster', subclass='red', price=1)": "not_affordable",
        f"place(x={px}, y={py}, type='ride', subtype='carousel', subclass='yellow', price=1)": "occupied",
        f"place(x=25, y={y}, type='ride', subtype='carousel', subclass='yellow', price=1)": "out_of_bounds",
        f"remove(x={px}, y={py}, type='ride', subtype='carousel', subclass='yellow')": "wrong_type_at_tile",
        f"remove(x={px}, y={py}, type='staff', subtype='mechanic', subclass='yellow')": "no_staff",
        f"place(x={x}, y={y}, type='staff', subtype='janitor', subclass='yellow')": "bad_staff_tile",
        f"modify(x={r['x']}, y={r['y']}, type='ride', price=50)": "price_above_max",
        "set_research(research_speed='fast', research_topics=['carousel'])": "not_in_easy_mode",
        "survey_guests(num_guests=40)": "too_many_guests",
        f"place(x={x}, y={y}, type='food', subtype='carousel', subclass='yellow', price=1, order_quantity=1)":
            "unknown_kind",
    }
    for text, reason in cases.items():
        new, ok, err, info = apply_action(s, text)
        assert not ok and info["reason"] == reason, (text, info)
        assert new == s  # an invalid action changes nothing
        assert reason in REASONS and err
    # valid ones in the game's grammar
    for text in ("wait()", f"modify(x={r['x']}, y={r['y']}, type='ride', price=2)",
                 f"place(x={px}, y={py}, type='staff', subtype='mechanic', subclass='yellow')",
                 f"place(x={x}, y={y}, type='shop', subtype='drink', subclass='yellow', price=1, order_quantity=5)",
                 f"remove(x={r['x']}, y={r['y']}, type='ride', subtype='carousel', subclass='yellow')"):
        new, ok, err, info = apply_action(s, text)
        assert ok, (text, err)


def test_an_invalid_action_still_runs_the_day(park):
    env, s = park
    nxt, ok, info = env.step("place(x=1, y=2, type='ride', subtype='carousel', subclass='yellow', price=2.5)")
    assert not ok and info["reason"] == "bad_argument_type" and nxt["step"] == s["step"] + 1
    assert nxt["rides"]["ride_list"][0]["x"] == s["rides"]["ride_list"][0]["x"]


def test_invalid_generators_break_the_named_rule(park):
    env, s = park
    rng = np.random.default_rng(0)
    for kind in INVALID_KINDS:
        a = make_invalid(s, kind, rng)
        if a is None:
            continue
        _, ok, _, info = apply_action(s, a)
        assert not ok, (kind, a)


def test_selling_refunds_the_games_share_and_costs_show_in_the_day(park):
    env, s = park
    p = env.params
    r = s["rides"]["ride_list"][0]
    new, ok, _, info = apply_action(s, f"remove(x={r['x']}, y={r['y']}, type='ride', subtype='carousel', "
                                       f"subclass='yellow')")
    refund = int(p.rides["carousel"]["yellow"]["building_cost"] * 0.66)
    assert ok and info["refund"] == refund and new["money"] == s["money"] + refund
    nxt, ok, _ = env.transition(s, f"remove(x={r['x']}, y={r['y']}, type='ride', subtype='carousel', "
                                   "subclass='yellow')", np.random.default_rng(0))
    assert nxt["revenue"] == refund and nxt["money"] == s["money"] + nxt["profit"]


# -- observation schema and the spec ------------------------------------------------------------

GAME_TOP = {"step", "horizon", "value", "money", "revenue", "expenses", "profit", "park_rating", "guests",
            "guest_survey_results", "rides", "shops", "staff", "research_speed", "research_topics",
            "research_operating_cost", "available_entities", "fast_days_since_last_new_entity",
            "medium_days_since_last_new_entity", "slow_days_since_last_new_entity", "new_entity_available",
            "entrance", "exit", "paths", "waters", "min_cleanliness"}


def test_state_follows_the_games_observation_and_spec_paths_resolve(park):
    env, s = park
    assert GAME_TOP <= set(s) and set(s) - GAME_TOP == {"hidden", "bankrupt", "game_over"}
    ride = s["rides"]["ride_list"][0]
    for k in ("ticket_price", "out_of_service", "uptime", "cleanliness", "times_operated", "avg_wait_time"):
        assert k in ride
    assert set(s["guests"]) == {"total_guests", "avg_money_spent", "avg_time_in_park", "avg_rides_visited",
                                "avg_food_shops_visited", "avg_drink_shops_visited", "avg_specialty_shops_visited"}
    assert {"total_janitors", "total_mechanics", "total_specialists", "staff_list"} <= set(s["staff"])
    spec = env.spec
    assert spec.reward_variable == "money" and len(spec.bn_variables) == 6
    assert {a for e in TRUE_GRAPH for a in e} <= set(spec.bn_variables)
    for v in spec.variables:
        assert v.low is not None and v.high is not None and np.isfinite([v.low, v.high]).all() or v.type == "categorical"
        assert v.in_bounds(get_path(s, v.path)), v.name
    json.dumps(s)


def test_deterministic_step_fixes_what_the_action_and_calendar_decide(park):
    env, s = park
    x, y = free_sites(s)[0]
    det, ok, _ = env.deterministic_step(s, f"place(x={x}, y={y}, type='ride', subtype='ferris_wheel', "
                                           f"subclass='yellow', price=1)")
    nxt, ok2, _ = env.transition(s, f"place(x={x}, y={y}, type='ride', subtype='ferris_wheel', subclass='yellow', "
                                    f"price=1)", np.random.default_rng(1))
    assert ok == ok2
    for v in env.spec.deterministic:
        assert get_path(det, v.path) == get_path(nxt, v.path), v.name


# -- mechanics ----------------------------------------------------------------------------------

def test_no_rides_no_guests_and_money_is_the_running_sum_of_profits():
    env = ThemeParkEnv(layout="two_paths", parameters="paper", horizon=6)
    s = env.reset(0)
    s, _, _ = env.step("wait()")
    assert s["guests"]["total_guests"] == 0 and s["money"] == 500 and s["park_rating"] == 14.0  # 25 + 0.3 * 30 - 20
    prev = s["money"]
    for a in (carousel_at(s), "wait()", "wait()"):
        s, ok, _ = env.step(a)
        assert ok and s["money"] == prev + s["profit"]
        prev = s["money"]
    assert s["guests"]["total_guests"] > 0 and s["rides"]["ride_list"][0]["times_operated"] > 0


def test_guests_inside_never_exceed_the_park_capacity():
    env = ThemeParkEnv(layout="the_line", parameters="game", horizon=3)
    s = env.reset(1)
    s, _, _ = env.step(carousel_at(s, price=4))
    cap = s["rides"]["total_capacity"]
    from cassandra_wm.envs.theme_park import sim
    seen = []
    orig = sim._Day._add_guests

    def spy(self, k):
        orig(self, k)
        seen.append(self.inside)
    sim._Day._add_guests = spy
    try:
        env.step("wait()")
    finally:
        sim._Day._add_guests = orig
    assert seen and max(seen) <= int(cap * 2.2) + cap // 100 + 1


def test_rating_formula_on_a_built_state():
    p = P.get_params("game")
    s = initial_state(LAYOUTS["the_fork"], p)
    clean = np.ones(400)
    rating, exc = park_rating(s, p, clean)   # no rides: 25 + 0.3 * 30 - |5 - 1| * 5
    assert rating == pytest.approx(25 + 9 - 20) and exc == 0
    x, y = free_sites(s)[0]
    s2, ok, _, _ = apply_action(s, CAROUSEL.format(x=x, y=y, p=1), p)
    clean[:3] = 0.1       # three filthy tiles: 3 * 8 points
    rating, exc = park_rating(s2, p, clean)
    # one yellow carousel: excitement 1 * 0.8; a new ride counts as down (uptime penalty 4); intensity 1
    assert exc == pytest.approx(0.8)
    assert rating == pytest.approx(25 + 9 + 0.8 - 24 - 4 - 20) or rating == 5.0


def test_shops_buy_stock_in_the_morning():
    env = ThemeParkEnv(layout="two_paths", parameters="game", horizon=5)
    s = env.reset(0)
    x, y = free_sites(s)[0]
    s, ok, _ = env.step(f"place(x={x}, y={y}, type='shop', subtype='food', subclass='yellow', price=5, "
                        f"order_quantity=30)")
    assert ok
    shop = s["shops"]["shop_list"][0]
    assert shop["operating_cost"] == 30 * 1 and shop["inventory"] == 30   # no rides: no guests, nothing sold
    s, _, _ = env.step(f"modify(x={x}, y={y}, type='shop', price=5, order_quantity=0)")
    assert s["shops"]["shop_list"][0]["out_of_service"] and s["shops"]["shop_list"][0]["operating_cost"] == 0
    paper = ThemeParkEnv(layout="two_paths", parameters="paper", horizon=5)
    s = paper.reset(0)
    s, ok, _ = paper.step(f"place(x={x}, y={y}, type='shop', subtype='food', subclass='yellow', price=4, "
                          f"order_quantity=30)")
    assert s["shops"]["shop_list"][0]["operating_cost"] == 28   # appendix F: a fixed daily cost


def test_staff_salaries_bankruptcy_and_dismissal():
    # paper parameters: salaries are owed; money below zero ends the game
    env = ThemeParkEnv(layout="the_fork", parameters="paper", horizon=10, start_money=150)
    s = env.reset(0)
    px, py = s["paths"][3]["x"], s["paths"][3]["y"]
    s, ok, _ = env.step(f"place(x={px}, y={py}, type='staff', subtype='janitor', subclass='yellow')")
    assert ok and s["money"] == 50 and s["staff"]["total_salary_paid"] == 100
    s, ok, _ = env.step("wait()")
    assert s["bankrupt"] and s["game_over"] and env.is_done(s)
    s2, ok, info = env.step("wait()")
    assert not ok and info["reason"] == "game_over" and s2["money"] == s["money"]
    # the game: staff the park cannot pay are dismissed instead
    env = ThemeParkEnv(layout="the_fork", parameters="game", horizon=10, start_money=30)
    s = env.reset(0)
    s, ok, _ = env.step(f"place(x={px}, y={py}, type='staff', subtype='janitor', subclass='yellow')")
    s, ok, _ = env.step("wait()")
    assert not s["bankrupt"] and s["money"] >= 0 and s["staff"]["staff_list"] == []


def test_episode_ends_at_the_horizon_and_steps_are_reproducible():
    a = ThemeParkEnv(layout="zig_zag", horizon=3)
    b = ThemeParkEnv(layout="zig_zag", horizon=3)
    sa, sb = a.reset(7), b.reset(7)
    for act in (carousel_at(sa), "wait()", "wait()"):
        sa, _, ia = a.step(act)
        sb, _, ib = b.step(act)
        assert sa == sb
    assert ia["done"] and sa["game_over"] and a.is_done(sa)


def test_transition_from_a_json_round_trip_equals_step():
    env = ThemeParkEnv(layout="ribs", parameters="game", horizon=5)
    s = env.reset(2)
    s, _, _ = env.step(carousel_at(s, price=4))
    frozen = json.loads(json.dumps(s))
    rng_state = env.rng.bit_generator.state
    nxt, ok, _ = env.step("wait()")
    g = np.random.default_rng()
    g.bit_generator.state = rng_state
    nxt2, ok2, _ = transition(frozen, "wait()", g)
    assert nxt == nxt2 and ok == ok2 and frozen == s


# -- agents ---------------------------------------------------------------------------------

def test_random_agent_plays_valid_actions():
    env = make_env("theme_park", layout="four_squares", horizon=4)
    s = env.reset(0)
    ag = RandomAgent(env.spec, seed=1)
    for _ in range(4):
        a = ag.act(s, np.random.default_rng(len(s["paths"])))
        s, ok, info = env.step(a)
        assert ok, (format_action(a), info)


def test_heuristic_builds_hires_and_stays_solvent_early():
    env = make_env("theme_park", layout="two_paths", parameters="paper", horizon=12)
    ag = HeuristicAgent(env.spec, seed=0, explore=0.0)
    s = env.reset(0)
    rng = np.random.default_rng(0)
    for _ in range(12):
        s, ok, info = env.step(ag.act(s, rng))
        assert ok, info
    assert not s["bankrupt"] and s["rides"]["total_rides"] >= 1
    assert any(st["subtype"] == "janitor" for st in s["staff"]["staff_list"]) or s["min_cleanliness"] >= 0.85


def test_a_heedless_builder_goes_bankrupt_with_the_papers_parameters():
    """Fixed daily shop costs: building the dearest shop every day ruins a park; waiting does not."""
    env = make_env("theme_park", layout="the_ladder", parameters="paper", horizon=15, start_money=20_000)
    s = env.reset(0)
    for _ in range(15):
        sites = free_sites(s)
        x, y = sites[0]
        s, ok, _ = env.step(f"place(x={x}, y={y}, type='shop', subtype='food', subclass='blue', price=10, "
                            f"order_quantity=50)" if s["money"] >= 3000 else "wait()")
        if env.is_done(s):
            break
    assert s["bankrupt"]
    w = make_env("theme_park", layout="the_ladder", parameters="paper", horizon=3)
    s = w.reset(0)
    for _ in range(3):
        s, _, _ = w.step("wait()")
    assert not s["bankrupt"] and s["money"] == 500


def test_render_draws_a_park(park):
    import matplotlib
    matplotlib.use("Agg")
    from cassandra_wm.envs.theme_park.render import render_park
    env, s = park
    ax = render_park(s)
    assert ax is not None
