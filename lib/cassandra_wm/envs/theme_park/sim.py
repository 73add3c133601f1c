"""The day engine: 500 ticks of agent-based guests, rides, shops and staff.

:func:`simulate_day` takes the JSON state on a morning (after the day's action has been applied)
and a numpy random generator, runs the day and returns the next morning's state.  It reads
nothing but the state, so planners can use it (through :func:`transition`) as an oracle from
any state.  Guests live only within a day: the park opens empty and closes with everyone
leaving; dirt, broken rides, repair progress, staff positions and the rating carry over, and
all of them are in the state.

How it stays fast (numpy, one core):

* guests are arrays (position, goal, money in cents, energy, hunger, thirst, happiness, ...);
* walking is event-driven: when a guest picks a target, the whole walk is planned at once
  over precomputed shortest routes on the path graph (one BFS per path tile, cached per
  layout), including where the guest will stop if an attraction on the way tempts them; the
  guest then needs no work until the tick the walk ends;
* hunger and thirst grow linearly, so they are stored as offsets from a common clock
  (value at tick t = base + rate * t); happiness penalties, litter and patience are applied
  every ``update_every`` ticks, using the position on the route at that tick;
* ride departures and finishes are events scheduled by tick; staff act when they are free.

Every number not in the published rules is in ``params.CHOICES`` and ``DESIGN_NOTES.md``.
"""
from __future__ import annotations

import math
from collections import deque
from functools import lru_cache
from typing import Any

import numpy as np

from .actions import apply_action
from .params import ATM_MIN_WITHDRAWAL, BILLBOARD_ATM_MONEY, CHOICES, GRID_SIZE, SHOPS, TICKS_PER_DAY
from .state import LEAVE_REASONS, cents, copy_park_state, dollars, refresh_totals

N = GRID_SIZE
NT = N * N           # tiles; index = y * N + x
SENTINEL = NT        # an extra, always-clean tile used to pad index tables
FAR = 10_000

# guest status; DECIDE means "picks a new target at the end of this tick" and never outlives a tick;
# SHOP: being served at a shop for shop_time ticks
FREE, WALK, QUEUE, LEAVE, RIDE, DECIDE, SHOP = 0, 1, 2, 3, 4, 6, 8
_LEAVE_CODE = {r: i for i, r in enumerate(LEAVE_REASONS)}
_NEIGHBOURS = ((0, -1), (1, 0), (0, 1), (-1, 0))
# attraction kind codes
K_RIDE, K_DRINK, K_FOOD, K_SOUVENIR, K_INFO, K_ATM, K_BILLBOARD = range(7)
_SPECIALTY_CODE = {"yellow": K_SOUVENIR, "blue": K_INFO, "green": K_ATM, "red": K_BILLBOARD}


# -- the path graph (fixed per layout) -------------------------------------------

class PathGraph:
    """Shortest routes between path tiles (one BFS per path tile).

    ``dist[goal, tile]`` is the number of steps, ``next[goal, tile]`` the next tile toward the
    goal, and ``route[pidx[goal], pidx[start], k]`` the tile reached after k steps.
    """

    def __init__(self, paths: tuple, entrance: tuple, exit_: tuple):
        is_path = np.zeros(NT + 1, dtype=bool)
        tiles = sorted({y * N + x for x, y in paths})
        is_path[tiles] = True
        self.is_path = is_path
        self.path_tiles = np.array(tiles, dtype=np.int64)
        self.pidx = np.full(NT + 1, -1, dtype=np.int64)
        self.pidx[self.path_tiles] = np.arange(len(tiles))
        self.entrance = entrance[1] * N + entrance[0]
        self.exit = exit_[1] * N + exit_[0]
        nbrs: dict[int, list[int]] = {}
        for t in tiles:
            x, y = t % N, t // N
            nbrs[t] = [(y + dy) * N + x + dx for dx, dy in _NEIGHBOURS
                       if 0 <= x + dx < N and 0 <= y + dy < N and is_path[(y + dy) * N + x + dx]]
        dist = np.full((NT + 1, NT + 1), FAR, dtype=np.int64)
        nxt = np.tile(np.arange(NT + 1, dtype=np.int64), (NT + 1, 1))  # off-path tiles stay put
        for g in tiles:
            d = dist[g]
            d[g] = 0
            q = deque([g])
            while q:
                u = q.popleft()
                for v in nbrs[u]:
                    if d[v] == FAR:
                        d[v] = d[u] + 1
                        nxt[g, v] = u  # from v, step to u to get closer to g
                        q.append(v)
        self.dist = dist
        self.next = nxt
        self.nbrs = nbrs
        pt = self.path_tiles
        finite = dist[np.ix_(pt, pt)]
        length = int(finite[finite < FAR].max()) + 1 if len(pt) else 1
        route = np.empty((len(pt), len(pt), length), dtype=np.int32)
        route[:, :, 0] = pt[None, :]
        for k in range(1, length):
            route[:, :, k] = nxt[pt[:, None], route[:, :, k - 1]]
        self.route = route


@lru_cache(maxsize=32)
def _graph_cached(paths: tuple, entrance: tuple, exit_: tuple) -> PathGraph:
    return PathGraph(paths, entrance, exit_)


def path_graph(state: dict) -> PathGraph:
    """The (cached) path graph of a state's layout."""
    return _graph_cached(tuple(tuple(p) for p in state["paths"]), tuple(state["entrance"]),
                         tuple(state["exit"]))


# -- tables that depend on what is built (cached: many days share one park) --------------

class ParkTables:
    """Per-park look-up tables: attraction adjacency, nearness and pass-by candidates."""

    def __init__(self, g: PathGraph, att_tile: np.ndarray, access: np.ndarray, near_scale: float):
        A = len(att_tile)
        # which attractions touch each path tile; which attraction tiles a janitor there cleans
        adj = np.full((NT + 1, 4), -1, dtype=np.int64)
        adj_tiles = np.full((NT + 1, 4), SENTINEL, dtype=np.int64)
        fill = np.zeros(NT + 1, dtype=np.int64)
        for i in range(A):
            t = int(att_tile[i])
            x, y = t % N, t // N
            for dx, dy in _NEIGHBOURS:
                if 0 <= x + dx < N and 0 <= y + dy < N:
                    p = (y + dy) * N + x + dx
                    if g.is_path[p]:
                        adj[p, fill[p]] = i
                        adj_tiles[p, fill[p]] = t
                        fill[p] += 1
        self.adj_tiles = adj_tiles
        # nearness of every attraction from every tile; an extra zero column stands for "none"
        near = np.zeros((NT + 1, A + 1))
        if A:
            near[:, :A] = np.exp(-g.dist[access].T.astype(np.float64) / near_scale)
        self.near = near
        # walks only ever head for an attraction's access tile or the exit
        goals = np.unique(np.append(access, g.exit))
        self.goal_row = np.full(NT + 1, -1, dtype=np.int64)
        self.goal_row[goals] = np.arange(goals.size)
        self.route = g.route[g.pidx[goals]]                       # (goals, starts, steps)
        # attractions touching each route, in walking order: (goals, starts, M) with step numbers
        U, P, L = self.route.shape
        cand = adj[self.route].reshape(U, P, L * 4)               # attraction or -1
        step = np.repeat(np.arange(L), 4)[None, None, :]
        d = g.dist[goals[:, None], g.path_tiles[None, :]]          # only tiles strictly between start and goal
        ok = (cand >= 0) & (step >= 1) & (step < d[:, :, None])
        m = max(int(ok.sum(axis=2).max()), 1) if A else 1
        order = np.argsort(~ok, axis=2, kind="stable")[:, :, :m]
        self.pass_att = np.where(np.take_along_axis(ok, order, 2), np.take_along_axis(cand, order, 2), A)
        self.pass_step = np.where(self.pass_att < A, np.take_along_axis(np.broadcast_to(step, cand.shape), order, 2),
                                  FAR)
        self.pass_count = ok.sum(axis=2)                          # how many there are on each route


@lru_cache(maxsize=16)
def _tables_cached(graph_key: tuple, att_tiles: tuple, access: tuple, near_scale: float) -> ParkTables:
    return ParkTables(_graph_cached(*graph_key), np.array(att_tiles, dtype=np.int64),
                      np.array(access, dtype=np.int64), near_scale)


# -- one day ---------------------------------------------------------------------

class _Day:
    """Working copy of one day, built from the morning state."""

    def __init__(self, state: dict, rng: np.random.Generator):
        c = self.c = CHOICES
        self.state = state
        self.rng = rng
        self.T = TICKS_PER_DAY
        self.K = int(c["update_every"])
        self.M = int(c["decision_every"])
        key = (tuple(tuple(p) for p in state["paths"]), tuple(state["entrance"]), tuple(state["exit"]))
        g = self.graph = _graph_cached(*key)
        rides, shops = state["rides"], state["shops"]
        self.R = R = len(rides)
        self.A = A = R + len(shops)
        atts = rides + shops
        self._attractions(atts, R, A, g)
        self.tab = _tables_cached(key, tuple(self.att_tile.tolist()), tuple(self.access.tolist()),
                                  float(c["near_scale"]))
        self._rides(rides, R)
        # dirt (1 - cleanliness) on every tile, plus the always-clean sentinel
        clean = np.asarray(state["cleanliness"], dtype=np.float64).reshape(-1)
        self.dirt = np.zeros(NT + 1)
        self.dirt[:NT] = np.clip(1.0 - clean, 0.0, 1.0)
        self.ride_dirt_max = float(self.dirt[self.att_tile[:R]].max()) if R else 0.0  # refreshed with litter
        self._staff(state["staff"])
        self._guests(int(sum(r["capacity"] for r in rides)), A + 1)
        # day totals
        self.ride_rev = self.shop_rev = self.ride_ops_cost = 0
        self.entered = self.turned_away = self.peak = self.happy_exits = 0
        self.exit_happiness = 0.0
        self.left = [0] * len(LEAVE_REASONS)
        self.retarget: list[np.ndarray] = []   # guests who pick a target at the next decision tick
        self.to_plan: list[np.ndarray] = []    # guests whose walk is planned at the next decision tick

    # -- set-up -----------------------------------------------------------------------
    def _attractions(self, atts: list, R: int, A: int, g: PathGraph) -> None:
        c = self.c
        self.att_tile = np.array([a["y"] * N + a["x"] for a in atts], dtype=np.int64)
        access = []
        for a in atts:
            cands = [(a["y"] + dy) * N + a["x"] + dx for dx, dy in _NEIGHBOURS
                     if 0 <= a["x"] + dx < N and 0 <= a["y"] + dy < N
                     and g.is_path[(a["y"] + dy) * N + a["x"] + dx]]
            # guests enter from the touching path tile closest to the entrance
            access.append(min(cands, key=lambda t: g.dist[g.entrance, t]) if cands else g.entrance)
        self.access = np.array(access, dtype=np.int64)
        self.price = np.array([cents(a["price"]) for a in atts], dtype=np.int64)
        sub = [a["subtype"] for a in atts]
        cls = [a["subclass"] for a in atts]
        # attraction tables carry one extra entry (index A) that stands for "no attraction"
        self.kind = np.array([K_RIDE if i < R else {"drink": K_DRINK, "food": K_FOOD}.get(sub[i])
                              or _SPECIALTY_CODE[cls[i]] for i in range(A)] + [-1], dtype=np.int64)
        self.is_ride = np.zeros(A + 1, dtype=bool)
        self.is_ride[:R] = True
        eff = {k: np.zeros(A + 1) for k in ("hunger_reduction", "thirst_reduction", "happiness_boost",
                                             "energy_boost", "caffeinated_steps", "money_withdrawal",
                                             "thirst_boost", "hunger_boost")}
        for i in range(R, A):
            p = SHOPS[sub[i]][cls[i]]
            for k in eff:
                eff[k][i] = p.get(k, 0.0)
        self.eff = eff
        self.feeds = eff["hunger_reduction"] > 0
        self.quenches = eff["thirst_reduction"] > 0
        kind = self.kind
        # target weights by need (hungry, thirsty, unhappy: code = h + 2 t + 4 u); specialty shops
        # are never sought out
        wbase = ((kind >= K_RIDE) & (kind <= K_FOOD)).astype(np.float64)
        self.tpl = np.array([wbase * (1.0 + c["need_boost"] * ((code & 1) * self.feeds + (code >> 1 & 1) * self.quenches)
                                      + c["unhappy_ride_boost"] * (code >> 2 & 1) * self.is_ride)
                             for code in range(8)])
        # chance to step in when passing by, by guest code (hungry, thirsty, informed, poor)
        ptab = np.zeros((16, A + 1))
        for code in range(16):
            hungry, thirsty, informed, poor = code & 1, code >> 1 & 1, code >> 2 & 1, code >> 3 & 1
            p = np.zeros(A + 1)
            p[kind == K_RIDE] = c["pass_ride"]
            fd = (kind == K_FOOD) | (kind == K_DRINK)
            keen = (self.feeds & bool(hungry)) | (self.quenches & bool(thirsty))
            p[fd] = np.where(keen[fd], c["pass_need"], c["pass_shop"])
            p[kind == K_SOUVENIR] = c["pass_souvenir"]
            p[kind == K_INFO] = 0.0 if informed else c["pass_info"]
            p[kind == K_ATM] = c["pass_atm_poor"] if poor else c["pass_atm"]
            p[kind == K_BILLBOARD] = c["pass_billboard"]
            ptab[code] = p
        self.ptab = ptab
        self.atm = (kind == K_ATM).nonzero()[0]
        self.att_rev = [0] * (A + 1)          # cents per attraction today
        self.att_customers = [0] * (A + 1)
        # which shop effects exist in this park (branches for absent ones are skipped)
        self.has_special = bool((kind >= K_SOUVENIR).any())
        self.has_boost = bool((eff["happiness_boost"] > 0).any())
        self.has_coffee = bool((eff["energy_boost"] > 0).any())
        self.any_fast = self.has_coffee
        self.is_special = kind >= K_SOUVENIR

    def _rides(self, rides: list, R: int) -> None:
        c = self.c
        self.cap = [int(r["capacity"]) for r in rides]
        self.excite = np.array([r["excitement"] for r in rides], dtype=np.float64)
        self.intens = np.array([r["intensity"] for r in rides], dtype=np.float64)
        self.done_g: list[int] = []   # riders off since the last decision tick, and their rides
        self.done_r: list[int] = []
        self.boarded: list[int] = []  # boarded since the last flush, and their rides
        self.boarded_r: list[int] = []
        self.ride_price = [cents(r["price"]) for r in rides]
        self.op_cost = [cents(r["cost_per_operation"]) for r in rides]
        self.brate = [float(r["breakdown_rate"]) for r in rides]
        self.duration = [int(c[f"ride_duration_{r['subtype']}"]) for r in rides]
        self.broken = np.array([bool(r["broken"]) for r in rides] + [False], dtype=bool)
        self.progress = [float(r["repair_progress"]) if r["broken"] else 0.0 for r in rides]
        self.broken_since = [0 if b else -1 for b in self.broken[:R].tolist()]
        self.broken_ticks = [0] * R
        self.n_broken = int(self.broken.sum())
        self.run_end = [-1] * R
        self.riders: list[list[int]] = [[] for _ in range(R)]
        self.queue: list[deque] = [deque() for _ in range(R)]
        self.load_start = [-1] * R
        self.depart_at = [-1] * R
        self.finish_sched: dict[int, list[int]] = {}
        self.depart_sched: dict[int, list[int]] = {}
        self.wake_sched: dict[int, list[np.ndarray]] = {}   # shop customers done by that decision tick
        self.ops = [0] * R
        self.rides_taken = [0] * R

    def _staff(self, staff: list) -> None:
        self.jan = [i for i, s in enumerate(staff) if s["subtype"] == "janitor"]
        self.mech = [i for i, s in enumerate(staff) if s["subtype"] == "mechanic"]
        tile = [s["y"] * N + s["x"] for s in staff]
        # position, destination, start of the current walk and the tick the staff member is free
        self.jpos = [tile[i] for i in self.jan]
        self.jdest = list(self.jpos)
        self.jstart = [0] * len(self.jan)
        self.jfree = [0] * len(self.jan)
        self.j_next = 0                      # the first tick a janitor is free again
        self.mpos = [tile[i] for i in self.mech]
        self.mdest = list(self.mpos)
        self.mstart = [0] * len(self.mech)
        self.mfree = [0] * len(self.mech)

    def _guests(self, G: int, width: int) -> None:
        # one slot per unit of park capacity: never more guests inside than the capacity
        self.G = G
        self.status = np.zeros(G, dtype=np.int8)
        i64 = lambda: np.zeros(G, dtype=np.int64)  # noqa: E731
        self.pos, self.goal, self.rgoal, self.t0, self.steps = i64(), i64(), i64(), i64(), i64()
        self.trip_end = np.full(G, FAR, dtype=np.int64)   # FAR: not walking
        self.fast = np.zeros(G, dtype=np.int64)
        self.tgt = np.full(G, -1, dtype=np.int64)
        self.stop_att = np.full(G, -1, dtype=np.int64)
        self.last = np.full(G, -1, dtype=np.int64)
        self.at_att = np.full(G, -1, dtype=np.int64)
        self.money = i64()
        self.qtoken = i64()
        f64 = lambda: np.zeros(G)  # noqa: E731
        self.energy, self.hb, self.tb, self.happy, self.pref = f64(), f64(), f64(), f64(), f64()
        self.patience, self.caff, self.souv, self.atm_uses = f64(), f64(), f64(), f64()
        self.informed = np.zeros(G, dtype=bool)
        self.visits = np.zeros((G, width))
        self.nov = np.ones((G, width))       # novelty 1 / (1 + visits); last column: "none"
        self.free = list(range(G - 1, -1, -1))
        self.n_active = 0
        self.n_caff = 0
        self.n_informed = 0

    # -- arrivals and departures ------------------------------------------------------
    def draw_guests(self, n: int) -> None:
        """Draw the attributes of up to ``n`` guests for the day at once (taken in arrival order)."""
        c, rng = self.c, self.rng
        u = rng.random((5, n))
        lo = np.array([c["energy_low"], c["need_low"], c["need_low"], c["happy_low"], c["patience_low"]])
        hi = np.array([c["energy_high"], c["need_high"], c["need_high"], c["happy_high"], c["patience_high"]])
        self.pool = lo[:, None] + (hi - lo)[:, None] * u
        self.pool_money = rng.integers(int(c["money_low"]), int(c["money_high"]) + 1, n) * 100
        self.pool_pref = np.minimum(np.maximum(rng.normal(c["pref_intensity_mean"], c["pref_intensity_sd"], n), 0), 10)
        self.pool_next = 0

    def spawn(self, k: int, t: int) -> None:
        c = self.c
        gs = np.array(self.free[-k:][::-1], dtype=np.int64)
        del self.free[-k:]
        i, j = self.pool_next, self.pool_next + k
        self.pool_next = j
        pool = self.pool
        self.status[gs] = DECIDE
        self.pos[gs] = self.graph.entrance
        self.last[gs] = -1
        self.money[gs] = self.pool_money[i:j]
        self.energy[gs] = pool[0, i:j]
        self.hb[gs] = pool[1, i:j] - c["hunger_rate"] * t
        self.tb[gs] = pool[2, i:j] - c["thirst_rate"] * t
        self.happy[gs] = pool[3, i:j]
        self.patience[gs] = pool[4, i:j]
        self.pref[gs] = self.pool_pref[i:j]
        if self.has_special or self.has_coffee:   # only these shops change the next four
            self.caff[gs] = 0.0
            self.souv[gs] = 0.0
            self.atm_uses[gs] = 0.0
            self.informed[gs] = False
        self.visits[gs] = 0.0
        self.nov[gs] = 1.0
        self.n_active += k
        self.entered += k
        self.peak = max(self.peak, self.n_active)
        self.retarget.append(gs)

    def set_leaving(self, gs: np.ndarray, reason: str | np.ndarray) -> None:
        """Guests head for the exit (their walk is planned at the next decision tick)."""
        if gs.size == 0:
            return
        self.status[gs] = LEAVE
        self.rgoal[gs] = self.graph.exit
        self.tgt[gs] = -1
        if isinstance(reason, str):
            self.left[_LEAVE_CODE[reason]] += int(gs.size)
        else:
            for code, n in enumerate(np.bincount(reason, minlength=len(LEAVE_REASONS)).tolist()):
                self.left[code] += n
        self.to_plan.append(gs)

    def depart_guests(self, gs: np.ndarray) -> None:
        """Guests walk out through the exit (or are still inside at closing)."""
        if gs.size == 0:
            return
        h = np.minimum(np.maximum(self.happy[gs], 0.0), 1.0)
        self.happy_exits += int(np.count_nonzero(h >= self.c["happy_exit"]))
        self.exit_happiness += float(h.sum())
        self.status[gs] = FREE
        self.trip_end[gs] = FAR
        if self.n_informed:
            self.n_informed -= int(np.count_nonzero(self.informed[gs]))
        self.free.extend(gs.tolist())
        self.n_active -= int(gs.size)

    # -- decisions ----------------------------------------------------------------------
    def choose_targets(self, gs: np.ndarray, t: int) -> None:
        """Guests pick their next attraction, or leave when they must (or have nothing to do)."""
        c = self.c
        hunger = self.hb[gs]
        hunger += c["hunger_rate"] * t
        thirst = self.tb[gs]
        thirst += c["thirst_rate"] * t
        happy = self.happy[gs]
        # weights: needs (by code), novelty, nearness; never the last attraction
        code = (hunger > c["need_threshold"]).view(np.int8) + 2 * (thirst > c["need_threshold"]).view(np.int8)
        code += 4 * (happy < c["unhappy_threshold"]).view(np.int8)
        w = self.tpl.take(code, axis=0)
        w *= self.nov.take(gs, axis=0)
        w *= self.tab.near.take(self.pos[gs], axis=0)
        w[np.arange(gs.size), self.last[gs]] = 0.0
        if self.n_informed:
            inf = self.informed[gs]
            if np.count_nonzero(inf):
                w[inf, :self.R] *= self.price[:self.R] <= self.money[gs[inf], None]
        cs = w.cumsum(1)
        tot = cs[:, -1]
        choice = (cs > (self.rng.random(gs.size) * tot)[:, None]).argmax(1)   # weighted draw
        energy, money = self.energy[gs], self.money[gs]
        go = ((tot > 0) & (happy >= c["leave_happiness"]) & (np.maximum(hunger, thirst) < 1.0) & (energy > 0)
              & (money >= cents(c["min_money"])))
        if np.count_nonzero(go) == go.size:
            stay, ch = gs, choice
        else:
            stay, ch = gs[go], choice[go]
            out = ~go
            why = np.full(gs.size, _LEAVE_CODE["nothing_to_do"], dtype=np.int64)
            why[money < cents(c["min_money"])] = _LEAVE_CODE["money"]
            why[happy < c["leave_happiness"]] = _LEAVE_CODE["unhappy"]
            why[thirst >= 1.0] = _LEAVE_CODE["thirst"]
            why[hunger >= 1.0] = _LEAVE_CODE["hunger"]
            why[energy <= 0] = _LEAVE_CODE["energy"]
            self.set_leaving(gs[out], why[out])
        if stay.size:
            self.status[stay] = WALK
            self.tgt[stay] = ch
            self.rgoal[stay] = self.access[ch]
            self.to_plan.append(stay)

    def plan(self, gs: np.ndarray, t: int) -> None:
        """Plan whole walks toward ``rgoal``: where they stop (target, exit, or a tempting
        attraction on the way), how many steps, and the tick they end."""
        c, g, tab = self.c, self.graph, self.tab
        pos = self.pos[gs]
        rgoal = self.rgoal[gs]
        gi = tab.goal_row[rgoal]
        si = g.pidx[pos]
        steps = g.dist[rgoal, pos]
        tgt = self.tgt[gs]
        stop_att, stop_tile = tgt, rgoal
        cand = (tab.pass_count[gi, si] * (tgt >= 0)).nonzero()[0]   # routes passing attractions
        if cand.size:
            gc, gic, sic = gs[cand], gi[cand], si[cand]
            att = tab.pass_att[gic, sic]                   # (n, M) attractions along the route
            need = c["need_threshold"] - 0.1
            code = (self.hb[gc] > need - c["hunger_rate"] * t).view(np.int8) + \
                2 * (self.tb[gc] > need - c["thirst_rate"] * t).view(np.int8)
            if self.has_special:
                code += 4 * self.informed[gc].view(np.int8) + 8 * (self.money[gc] < 20 * 100).view(np.int8)
            p = self.ptab[code[:, None], att]
            p *= self.nov[gc[:, None], att]                # novelty counts here too
            hit = (self.rng.random(att.shape) < p) & (att != tgt[cand, None]) & (att != self.last[gc][:, None])
            rows = (hit.any(axis=1)).nonzero()[0]
            if rows.size:
                k = hit[rows].argmax(axis=1)
                st = tab.pass_step[gic[rows], sic[rows], k]
                rc = cand[rows]
                steps[rc] = st
                stop_att, stop_tile = tgt.copy(), rgoal.copy()
                stop_att[rc] = att[rows, k]
                stop_tile[rc] = tab.route[gic[rows], sic[rows], st]
        self.energy[gs] -= steps
        ticks = steps
        if self.n_caff:
            fast = self.caff[gs] > 0
            self.fast[gs] = fast
            if np.count_nonzero(fast):
                ticks = np.where(fast, (steps + 1) // 2, steps)
                gf = gs[fast]
                self.caff[gf] = np.maximum(self.caff[gf] - steps[fast], 0.0)
                self.n_caff = int(np.count_nonzero(self.caff))
        elif self.any_fast:
            self.fast[gs] = 0
        self.t0[gs] = t
        self.steps[gs] = steps
        self.stop_att[gs] = stop_att
        self.goal[gs] = stop_tile
        self.trip_end[gs] = np.maximum(ticks, 1) + t

    def position_now(self, gs: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Where walking guests are at tick t on their planned route, and steps walked so far."""
        g = self.graph
        k = np.minimum((t - self.t0[gs]) * (1 + self.fast[gs]), self.steps[gs])
        return g.route[g.pidx[self.rgoal[gs]], g.pidx[self.pos[gs]], k], k

    # -- visits -------------------------------------------------------------------------
    def visit(self, gs: np.ndarray, as_: np.ndarray, t: int) -> None:
        """Guests reach attractions (their target, or one they pass by)."""
        c = self.c
        self.last[gs] = as_
        v = self.visits[gs, as_] + 1.0
        self.visits[gs, as_] = v
        self.nov[gs, as_] = 1.0 / (1.0 + v)
        isr = self.is_ride[as_]
        nr = np.count_nonzero(isr)
        if nr:
            rg, ra = (gs, as_) if nr == isr.size else (gs[isr], as_[isr])
            # broken, unaffordable or too dirty rides turn guests away; the others queue or board
            bad = self.price[ra] > self.money[rg]
            if self.n_broken:
                bad |= self.broken[ra]
            if np.count_nonzero(bad):
                self.happy[rg[bad]] -= c["reject_penalty"]
            if self.ride_dirt_max > 1.0 - c["dirty_ride"]:     # only rides this dirty are ever refused
                dirt = self.dirt[self.att_tile[ra]]
                dirty = (self.rng.random(rg.size) < (dirt - 1.0 + c["dirty_ride"]) / c["dirty_ride"]) & ~bad
                self.happy[rg[dirty]] -= c["dirty_refuse_penalty"]
                bad |= dirty
            if np.count_nonzero(bad):
                self.decide(rg[bad])
                ok = ~bad
                rg, ra = rg[ok], ra[ok]
            if rg.size:
                self.ride_arrivals(rg, ra, t)
        if nr < isr.size:
            if nr:
                self.shop_visit(gs[~isr], as_[~isr], t)
            else:
                self.shop_visit(gs, as_, t)

    def shop_visit(self, sg: np.ndarray, sa: np.ndarray, t: int) -> None:
        c, e = self.c, self.eff
        kind = self.kind[sa]
        # food and drink are bought only by guests at least a little hungry or thirsty
        lo_h, lo_t = -c["hunger_rate"] * t, -c["thirst_rate"] * t
        hb, tb = self.hb[sg], self.tb[sg]
        price = self.price[sa]
        wants = (self.feeds[sa] & (hb > c["buy_need"] + lo_h)) | (self.quenches[sa] & (tb > c["buy_need"] + lo_t))
        if self.has_special:
            wants |= self.is_special[sa]
        poor = price > self.money[sg]
        ok = wants & ~poor
        if np.count_nonzero(ok) < ok.size:
            self.happy[sg[poor & wants]] -= c["reject_penalty"]
            self.decide(sg[~ok])
            sg, sa, kind, price, hb, tb = sg[ok], sa[ok], kind[ok], price[ok], hb[ok], tb[ok]
            if sg.size == 0:
                return
        self.money[sg] -= price
        rev, cust = self.att_rev, self.att_customers
        for a, p in zip(sa.tolist(), price.tolist()):
            rev[a] += p
            cust[a] += 1
            self.shop_rev += p
        self.hb[sg] = np.maximum(hb - e["hunger_reduction"][sa], lo_h)
        self.tb[sg] = np.maximum(tb - e["thirst_reduction"][sa], lo_t)
        boost = e["happiness_boost"][sa] if self.has_boost else None
        redirect = None
        if self.has_special and kind.max() >= K_SOUVENIR:
            souv = kind == K_SOUVENIR
            if np.count_nonzero(souv):   # each further souvenir pleases less
                boost = e["happiness_boost"][sa] * np.where(souv, c["souvenir_decay"] ** self.souv[sg], 1.0)
                self.souv[sg] += souv
            info = kind == K_INFO
            if np.count_nonzero(info):
                gi = sg[info]
                self.n_informed += int(np.count_nonzero(~self.informed[gi]))
                self.informed[gi] = True
            atm = kind == K_ATM
            if np.count_nonzero(atm):   # withdrawals halve with each use, never below the minimum
                ga = sg[atm]
                amount = np.maximum(c["atm_decay"] ** self.atm_uses[ga] * e["money_withdrawal"][sa[atm]],
                                    float(ATM_MIN_WITHDRAWAL))
                self.money[ga] += np.round(amount * 100).astype(np.int64)
                self.atm_uses[ga] += 1
            bill = kind == K_BILLBOARD
            if np.count_nonzero(bill):
                redirect = self.billboard(sg[bill], sa[bill], lo_h, lo_t)
        if boost is not None:
            self.happy[sg] += boost
        energy = e["energy_boost"][sa] if self.has_coffee else None
        if energy is not None and np.count_nonzero(energy):   # coffee: energy and caffeinated (double-speed) steps
            coffee = energy > 0
            gc = sg[coffee]
            self.energy[gc] += energy[coffee]
            self.caff[gc] = np.maximum(self.caff[gc], e["caffeinated_steps"][sa[coffee]])
            self.n_caff = int(np.count_nonzero(self.caff))
        lit = self.rng.random(sa.size) < c["shop_litter_prob"]
        if np.count_nonzero(lit):
            np.add.at(self.dirt, self.att_tile[sa[lit]], c["litter_amount"])
        if redirect is not None and redirect.size:
            sg = sg[~np.isin(sg, redirect)]
        if sg.size:   # being served takes a while; then they decide again
            self.status[sg] = SHOP
            self.at_att[sg] = self.last[sg]
            wake = -(-(t + int(c["shop_time"])) // self.M) * self.M
            self.wake_sched.setdefault(wake, []).append(sg)

    def billboard(self, gb: np.ndarray, ab: np.ndarray, lo_h: float, lo_t: float) -> np.ndarray | None:
        """Billboards: hungrier, thirstier, forget past visits; poor guests head for an ATM."""
        c, e = self.c, self.eff
        cap = c["billboard_cap"]
        self.hb[gb] = np.minimum(self.hb[gb] + e["hunger_boost"][ab], cap + lo_h)
        self.tb[gb] = np.minimum(self.tb[gb] + e["thirst_boost"][ab], cap + lo_t)
        self.visits[gb] = 0.0
        self.nov[gb] = 1.0
        if not self.atm.size:
            return None
        poor = gb[self.money[gb] < BILLBOARD_ATM_MONEY * 100]
        if poor.size:
            d = self.graph.dist[self.access[self.atm][None, :], self.pos[poor][:, None]]
            best = self.atm[np.argmin(d, axis=1)]
            self.status[poor] = WALK
            self.tgt[poor] = best
            self.rgoal[poor] = self.access[best]
            self.to_plan.append(poor)
        return poor

    def decide(self, gs: np.ndarray) -> None:
        self.status[gs] = DECIDE
        self.retarget.append(gs)

    # -- rides --------------------------------------------------------------------------
    def ride_arrivals(self, gs: np.ndarray, ra: np.ndarray, t: int) -> None:
        """Guests at a working ride join its queue; a ride that is not running boards first come, first served."""
        self.status[gs] = QUEUE
        self.at_att[gs] = ra
        tok = self.qtoken[gs] + 1
        self.qtoken[gs] = tok
        queue = self.queue
        touched = []
        for g, r, k in zip(gs.tolist(), ra.tolist(), tok.tolist()):
            queue[r].append((g, k))
            if r not in touched:
                touched.append(r)
        for r in touched:
            if self.run_end[r] < 0:
                self.board_queue(r, t)

    def board(self, gl: list, r: int, t: int) -> None:
        """Guests ``gl`` board ride ``r`` and pay (the arrays are updated by :meth:`flush_boarding`)."""
        n = len(gl)
        p = self.ride_price[r]
        self.ride_rev += p * n
        self.att_rev[r] += p * n
        self.att_customers[r] += n
        self.boarded.extend(gl)
        self.boarded_r.extend([r] * n)
        riders = self.riders[r]
        if not riders:
            self.load_start[r] = t
        riders.extend(gl)
        # the ride waits longer the more seats are empty; a full ride leaves at once
        empty = self.cap[r] - len(riders)
        when = max(t, self.load_start[r] + math.ceil(self.c["ride_wait_per_seat"] * empty))
        if when != self.depart_at[r]:
            self.depart_at[r] = when
            self.depart_sched.setdefault(when, []).append(r)

    def flush_boarding(self) -> None:
        """Money, status and ride of everyone who boarded since the last flush."""
        gs = np.array(self.boarded, dtype=np.int64)
        rs = np.array(self.boarded_r, dtype=np.int64)
        self.boarded, self.boarded_r = [], []
        self.money[gs] -= self.price[rs]
        self.status[gs] = RIDE
        self.at_att[gs] = rs

    def board_queue(self, r: int, t: int) -> None:
        # a queue entry is current while the guest's queue token still matches (joining again,
        # boarding or giving up all retire it)
        q = self.queue[r]
        seats = self.cap[r] - len(self.riders[r])
        take = []
        qtoken = self.qtoken
        while q and len(take) < seats:
            g, tok = q.popleft()
            if qtoken[g] == tok:
                take.append(g)
        if take:
            self.board(take, r, t)

    def flush_queue(self, r: int) -> None:
        q = self.queue[r]
        out = [g for g, tok in q if self.qtoken[g] == tok]
        q.clear()
        if out:
            out = np.array(out, dtype=np.int64)
            self.happy[out] -= self.c["reject_penalty"]
            self.decide(out)

    def depart(self, r: int, t: int) -> None:
        end = t + self.duration[r]
        self.run_end[r] = end
        self.finish_sched.setdefault(end, []).append(r)
        self.ops[r] += 1
        self.rides_taken[r] += len(self.riders[r])
        self.ride_ops_cost += self.op_cost[r]

    def finish(self, r: int, t: int) -> None:
        """A run ends: riders get off (they feel it and decide at the next decision tick)."""
        riders = self.riders[r]
        self.done_g.extend(riders)
        self.done_r.extend([r] * len(riders))
        self.riders[r] = []
        self.run_end[r] = -1
        self.load_start[r] = -1
        self.depart_at[r] = -1
        if self.rng.random() < self.brate[r]:
            self.broken[r] = True
            self.progress[r] = 0.0
            self.broken_since[r] = t
            self.n_broken += 1
            self.flush_queue(r)
        elif self.queue[r]:
            self.board_queue(r, t)

    def riders_off(self) -> None:
        """Ride effects for everyone who got off since the last decision tick."""
        c = self.c
        gs = np.array(self.done_g, dtype=np.int64)
        r = np.array(self.done_r, dtype=np.int64)
        self.done_g, self.done_r = [], []
        # fun fades with repeats; intensity far from the guest's taste spoils it
        fun = (c["ride_happy_base"] + c["ride_happy_excitement"] * self.excite[r]) / np.maximum(self.visits[gs, r], 1.0)
        self.happy[gs] += fun - c["ride_happy_intensity_gap"] * np.abs(self.intens[r] - self.pref[gs])
        self.energy[gs] -= c["ride_energy"]
        self.decide(gs)

    def repaired(self, r: int, t: int) -> None:
        self.broken[r] = False
        self.progress[r] = 0.0
        self.broken_ticks[r] += t - self.broken_since[r]
        self.broken_since[r] = -1
        self.n_broken -= 1

    # -- staff ------------------------------------------------------------------------
    def janitors(self, t: int) -> None:
        """Free janitors clean where they stand if it is dirty, else walk to the dirtiest spot near."""
        c, g, dirt, adj_tiles = self.c, self.graph, self.dirt, self.tab.adj_tiles
        for j in range(len(self.jpos)):
            if self.jfree[j] > t:
                continue
            p = self.jpos[j] = self.jdest[j]
            at = adj_tiles[p]
            if dirt[p] + dirt[at].sum() > c["janitor_threshold"]:
                amount = c["clean_rate"] * c["clean_chunk"]
                dirt[p] = max(dirt[p] - amount, 0.0)
                dirt[at] = np.maximum(dirt[at] - amount, 0.0)
                dirt[SENTINEL] = 0.0
                self.jfree[j] = t + int(c["clean_chunk"])
                continue
            pt = g.path_tiles
            d = g.dist[p, pt]
            near = d <= c["janitor_radius"]
            ptn, dn = pt[near], d[near]
            val = dirt[ptn] + dirt[adj_tiles[ptn]].sum(axis=1)
            best = int(np.argmax(val - c["janitor_distance_cost"] * dn))
            if val[best] > c["janitor_threshold"] and ptn[best] != p:
                self.jdest[j] = int(ptn[best])
                self.jstart[j] = t
                self.jfree[j] = t + int(dn[best])
            else:
                self.jfree[j] = t + int(c["janitor_retarget"])
        self.j_next = min(self.jfree)

    def mechanics(self, t: int) -> None:
        """Free mechanics walk to the nearest broken ride and repair it."""
        g = self.graph
        broken = (self.broken).nonzero()[0].tolist()
        for m in range(len(self.mpos)):
            if self.mfree[m] > t or not broken:
                continue
            p = self.mpos[m] = self.mdest[m]
            r = min(broken, key=lambda b: g.dist[self.access[b], p])
            acc = int(self.access[r])
            if acc == p:
                self.progress[r] += 1.0 / self.c["repair_work"]
                if self.progress[r] >= 1.0 - 1e-9:
                    self.repaired(r, t)
                    broken.remove(r)
            else:
                self.mdest[m] = acc
                self.mstart[m] = t
                self.mfree[m] = t + int(g.dist[acc, p])

    def staff_positions(self, t: int) -> tuple[list[int], list[int]]:
        """Where janitors and mechanics stand at tick t (part-way along a walk if still walking)."""
        g = self.graph
        out = []
        for pos, dest, start, free in ((self.jpos, self.jdest, self.jstart, self.jfree),
                                       (self.mpos, self.mdest, self.mstart, self.mfree)):
            here = []
            for i in range(len(pos)):
                if dest[i] == pos[i] or free[i] <= t:
                    here.append(int(dest[i]))
                else:
                    k = min(t - start[i], int(g.dist[dest[i], pos[i]]))
                    here.append(int(g.route[g.pidx[dest[i]], g.pidx[pos[i]], k]))
            out.append(here)
        return out[0], out[1]

    # -- every few ticks -----------------------------------------------------------------
    def periodic(self, t: int) -> None:
        c, K = self.c, self.K
        act = (self.status).nonzero()[0]
        if act.size == 0:
            return
        st = self.status[act]
        hunger = self.hb[act] + c["hunger_rate"] * t
        thirst = self.tb[act] + c["thirst_rate"] * t
        tile = self.pos[act]
        energy = self.energy[act]
        walk = (st & 1).view(np.bool_)
        if np.count_nonzero(walk):
            gw = act[walk]
            where, k = self.position_now(gw, t)
            tile[walk] = where
            energy[walk] += self.steps[gw] - k   # a walk's energy is taken when it is planned
        inside = ~walk & (st != DECIDE)          # queueing, riding or at a shop
        if np.count_nonzero(inside):
            tile[inside] = self.att_tile[self.at_att[act[inside]]]
        pain = (hunger > c["need_pain"]).astype(np.float64) + (thirst > c["need_pain"])
        h = self.happy[act] + K * (c["happiness_drift"] - c["need_pain_rate"] * pain
                                   - c["dirty_tile_rate"] * np.maximum(c["dirty_tile"] - 1.0 + self.dirt[tile], 0.0))
        np.maximum(h, 0.0, out=h)
        np.minimum(h, 1.0, out=h)
        self.happy[act] = h
        # litter: unhappy guests drop more
        lit = self.rng.random(act.size) < K * (c["litter_base"] + c["litter_unhappy"] * (1.0 - h))
        if np.count_nonzero(lit):
            np.add.at(self.dirt, tile[lit], c["litter_amount"])
            np.minimum(self.dirt, 1.0, out=self.dirt)
            if self.R:
                self.ride_dirt_max = float(self.dirt[self.att_tile[:self.R]].max())
        # queues wear patience out
        q = st == QUEUE
        if np.count_nonzero(q):
            gq = act[q]
            self.patience[gq] -= K
            quit_ = gq[self.patience[gq] <= 0]
            if quit_.size:
                self.happy[quit_] -= c["queue_quit_penalty"]
                self.qtoken[quit_] += 1
                self.set_leaving(quit_, "patience")
        # walkers with an exhausted need turn for the exit from where they are
        must = (st == WALK) & ((h < c["leave_happiness"]) | (np.maximum(hunger, thirst) >= 1.0) | (energy <= 0))
        if np.count_nonzero(must):
            why = np.full(act.size, _LEAVE_CODE["unhappy"], dtype=np.int64)
            why[thirst >= 1.0] = _LEAVE_CODE["thirst"]
            why[hunger >= 1.0] = _LEAVE_CODE["hunger"]
            why[energy <= 0] = _LEAVE_CODE["energy"]
            gm = act[must]
            self.energy[gm] = energy[must]
            self.pos[gm] = tile[must]
            self.trip_end[gm] = FAR
            self.set_leaving(gm, why[must])

    # -- the day ------------------------------------------------------------------------
    def run(self) -> None:
        c, rng, T, M = self.c, self.rng, self.T, self.M
        open_ticks = int(c["arrival_ticks"])
        p_enter = min(1.0, max(0.0, c["enter_prob_base"] + c["enter_prob_slope"] * self.state["park_rating"] / 100))
        lam = c["arrival_per_capacity"] * self.G * p_enter
        # potential guests who decide to come in, per tick; the gate admits them on decision ticks
        arrivals = rng.poisson(lam, open_ticks) if self.G else np.zeros(open_ticks, dtype=np.int64)
        arrivals = np.add.reduceat(arrivals, np.arange(0, open_ticks, M)).tolist()
        self.draw_guests(sum(arrivals))
        has_j, has_m = bool(self.jpos), bool(self.mpos)
        finish_sched, depart_sched = self.finish_sched, self.depart_sched
        for t in range(T):
            fin = finish_sched.pop(t, None)
            if fin:
                for r in fin:
                    self.finish(r, t)
            if has_m and self.n_broken:
                self.mechanics(t)
            if has_j and t >= self.j_next:
                self.janitors(t)
            if t % M == 0:
                self.decision_tick(t, arrivals, open_ticks)
            dep = depart_sched.pop(t, None)
            if dep:   # after boarding (at finishes and decision ticks): rides due now leave
                for r in dep:
                    if self.run_end[r] < 0 and self.riders[r] and self.depart_at[r] == t:
                        self.depart(r, t)
        # closing time: loaded rides make their last run, then everyone still inside goes home
        for r in range(self.R):
            if self.riders[r] and self.run_end[r] < 0:
                self.depart(r, T)
        if self.boarded:
            self.flush_boarding()
        if self.done_g:
            self.riders_off()
        rest = self.status.nonzero()[0]
        self.left[_LEAVE_CODE["closing"]] += int(np.count_nonzero(self.status[rest] != LEAVE))  # the rest were counted
        self.depart_guests(rest)
        for r in range(self.R):
            if self.broken[r]:
                self.broken_ticks[r] += T - self.broken_since[r]

    def decision_tick(self, t: int, arrivals: list, open_ticks: int) -> None:
        """Guests arrive, finish walks and shopping, choose targets and plan walks."""
        M, K, trip_end = self.M, self.K, self.trip_end
        if t < open_ticks and arrivals[t // M]:
            k = arrivals[t // M]
            room = self.G - self.n_active
            if k > room:
                self.turned_away += k - room
                k = room
            if k:
                self.spawn(k, t)
        if self.boarded:
            self.flush_boarding()
        if self.done_g:
            self.riders_off()
        wake = self.wake_sched.pop(t, None)
        if wake:
            for gs in wake:
                self.decide(gs)
        if self.n_active:
            e = (trip_end <= t).nonzero()[0]
            if e.size:
                trip_end[e] = FAR
                self.pos[e] = self.goal[e]
                lv = self.status[e] == LEAVE
                if np.count_nonzero(lv):
                    self.depart_guests(e[lv])
                    e = e[~lv]
                if e.size:
                    self.visit(e, self.stop_att[e], t)
                    if self.boarded:
                        self.flush_boarding()
        if self.n_active and t % K == 0 and t:
            self.periodic(t)
        if self.retarget:
            gs = self.retarget[0] if len(self.retarget) == 1 else np.concatenate(self.retarget)
            self.retarget = []
            self.choose_targets(gs, t)
        if self.to_plan:
            gs = self.to_plan[0] if len(self.to_plan) == 1 else np.concatenate(self.to_plan)
            self.to_plan = []
            self.plan(gs, t)

    # -- the next morning ---------------------------------------------------------------
    def next_state(self) -> dict:
        s = copy_park_state(self.state)
        T, R = self.T, self.R
        revenue = self.ride_rev + self.shop_rev
        shop_ops = sum(cents(x["operating_cost"]) for x in s["shops"])
        salaries = sum(cents(x["salary"]) for x in s["staff"])
        expenses = self.ride_ops_cost + shop_ops + salaries
        money = cents(s["money"]) + revenue - expenses
        s["money"] = dollars(money)
        s["revenue"], s["ride_revenue"], s["shop_revenue"] = (dollars(revenue), dollars(self.ride_rev),
                                                               dollars(self.shop_rev))
        s["expenses"], s["ride_operating_costs"] = dollars(expenses), dollars(self.ride_ops_cost)
        s["shop_operating_costs"], s["salaries"] = dollars(shop_ops), dollars(salaries)
        s["profit"] = dollars(revenue - expenses)
        s["guests_today"] = int(self.entered)
        s["happy_departures"] = int(self.happy_exits)
        s["avg_happiness"] = round(self.exit_happiness / self.entered, 4) if self.entered else 0.0
        s["peak_guests"] = int(self.peak)
        s["turned_away"] = int(self.turned_away)
        s["guests_left"] = {r: int(self.left[i]) for i, r in enumerate(LEAVE_REASONS)}
        for i, r in enumerate(s["rides"]):
            r["broken"] = bool(self.broken[i])
            r["repair_progress"] = round(float(self.progress[i]), 4) if self.broken[i] else 0.0
            r["operations_today"] = int(self.ops[i])
            r["riders_today"] = int(self.rides_taken[i])
            r["revenue_today"] = dollars(self.att_rev[i])
            r["uptime_today"] = round(1.0 - self.broken_ticks[i] / T, 4)
        for j, x in enumerate(s["shops"]):
            x["customers_today"] = int(self.att_customers[R + j])
            x["revenue_today"] = dollars(self.att_rev[R + j])
        jp, mp = self.staff_positions(T)
        for k, i in enumerate(self.jan):
            s["staff"][i]["x"], s["staff"][i]["y"] = jp[k] % N, jp[k] // N
        for k, i in enumerate(self.mech):
            s["staff"][i]["x"], s["staff"][i]["y"] = mp[k] % N, mp[k] // N
        clean = np.round(1.0 - np.clip(self.dirt[:NT], 0.0, 1.0), 3)
        s["cleanliness"] = clean.reshape(N, N).tolist()
        care = self.graph.is_path[:NT].copy()
        if self.A:
            care[self.att_tile] = True
        s["min_cleanliness"] = float(clean[care].min())
        s["mean_cleanliness"] = round(float(clean[care].mean()), 4)
        s["broken_rides"] = int(self.broken.sum())
        s["uptime"] = round(1.0 - sum(self.broken_ticks) / (T * R), 4) if R else 1.0
        refresh_totals(s)
        s["park_rating"] = park_rating(s, self.happy_exits)
        s["day"] = int(s["day"]) + 1
        if money < 0:
            s["bankrupt"] = True
            s["game_over"] = True
        if s["day"] >= s["horizon"]:
            s["game_over"] = True
        return s


def park_rating(state: dict, happy_exits: int) -> float:
    """The evening rating (0..100): a weighted blend of yesterday's rating and today's score.

    Today's score grows with total excitement and happy departures and shrinks with dirt
    (lowest cleanliness), downtime and an average intensity far from 5.
    """
    c = CHOICES
    if state["rides"]:
        score = (c["rating_open_bonus"]
                 + c["rating_excitement"] * (1.0 - math.exp(-state["total_excitement"] / c["rating_excitement_scale"]))
                 + c["rating_happy"] * happy_exits / (happy_exits + c["rating_happy_half"])
                 + c["rating_clean"] * state["min_cleanliness"]
                 + c["rating_uptime"] * state["uptime"]
                 - c["rating_intensity"] * abs(state["avg_intensity"] - 5.0))
    else:
        score = c["rating_clean"] * state["min_cleanliness"]
    score = min(100.0, max(0.0, score))
    m = c["rating_memory"]
    return round(m * float(state["park_rating"]) + (1.0 - m) * score, 2)


def simulate_day(state: dict, rng: np.random.Generator) -> dict:
    """Run one day from a morning state (action already applied); returns the next morning."""
    day = _Day(state, rng)
    day.run()
    return day.next_state()


def transition(state: dict, action: Any, rng: np.random.Generator) -> tuple[dict, bool, dict]:
    """The full step as a function: apply the action (if valid), run the day.

    Returns ``(next_state, valid, info)``; ``info`` has ``error`` and ``reason`` (None when the
    action was valid) and ``done``.  The input state is not modified.  A finished game
    (bankrupt or out of days) stays as it is and every action is refused.
    """
    after, valid, error, reason = apply_action(state, action)
    if reason == "game_over":
        return after, False, {"error": error, "reason": reason, "done": True}
    nxt = simulate_day(after, rng)
    return nxt, valid, {"error": error, "reason": reason, "done": bool(nxt["game_over"])}


__all__ = ["simulate_day", "transition", "park_rating", "path_graph", "PathGraph"]
