"""The day engine: 500 ticks of agent-based guests, rides, shops and staff.

:func:`simulate_day` takes the JSON state on a morning (after the day's action has been applied)
and a numpy random generator, runs the day and returns the next morning's state.  It reads
nothing but the state, so planners can use it (through :func:`transition`) as an oracle from
any state.  Guests live only within a day: the park opens empty and closes with everyone
leaving; dirt, broken rides, repair progress, staff positions and the rating carry over, and
they are all in the state.

Guests are numpy arrays (position, goal, money in cents, energy, hunger, thirst, happiness,
patience, ...).  Walking follows next-hop tables from breadth-first searches over the path
graph, computed once per layout.  Hunger and thirst grow linearly, so they are stored as
offsets from a common clock (value at tick t = base + rate * t) and never updated per tick;
happiness penalties, litter and patience are applied every ``update_every`` ticks.  Ride
departures and finishes are events scheduled by tick.  The choices behind every number not
in the published rules are in ``DESIGN_NOTES.md`` and ``params.CHOICES``.
"""
from __future__ import annotations

import math
from collections import deque
from functools import lru_cache
from typing import Any

import numpy as np

from .actions import apply_action
from .params import CHOICES, GRID_SIZE, RIDES, SHOPS, STAFF, TICKS_PER_DAY
from .state import LEAVE_REASONS, cents, copy_park_state, dollars, refresh_totals

N = GRID_SIZE
NT = N * N           # tiles; index = y * N + x
SENTINEL = NT        # an extra, always-clean tile used to pad index tables
FAR = 10_000

FREE, WALK, QUEUE, LEAVE, RIDE, DECIDE = 0, 1, 2, 3, 4, 6   # guest status; odd codes walk
# DECIDE: picking a new target at the end of this tick (never lasts past a tick)
_LEAVE_CODE = {r: i for i, r in enumerate(LEAVE_REASONS)}
_NEIGHBOURS = ((0, -1), (1, 0), (0, 1), (-1, 0))


# -- the path graph (fixed per layout) -------------------------------------------

class PathGraph:
    """Distances and next steps between path tiles, from one BFS per path tile."""

    def __init__(self, paths: tuple, entrance: tuple, exit_: tuple):
        is_path = np.zeros(NT + 1, dtype=bool)
        tiles = sorted({y * N + x for x, y in paths})
        is_path[tiles] = True
        self.is_path = is_path
        self.path_tiles = np.array(tiles, dtype=np.int64)
        self.entrance = entrance[1] * N + entrance[0]
        self.exit = exit_[1] * N + exit_[0]
        nbrs: dict[int, list[int]] = {}
        for t in tiles:
            x, y = t % N, t // N
            nbrs[t] = [(y + dy) * N + x + dx for dx, dy in _NEIGHBOURS
                       if 0 <= x + dx < N and 0 <= y + dy < N and is_path[(y + dy) * N + x + dx]]
        dist = np.full((NT + 1, NT + 1), FAR, dtype=np.int32)
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
        self.dist = dist      # dist[goal, tile]
        self.next = nxt       # next[goal, tile]
        self.nbrs = nbrs


@lru_cache(maxsize=64)
def _graph_cached(paths: tuple, entrance: tuple, exit_: tuple) -> PathGraph:
    return PathGraph(paths, entrance, exit_)


def path_graph(state: dict) -> PathGraph:
    """The (cached) path graph of a state's layout."""
    return _graph_cached(tuple(tuple(p) for p in state["paths"]), tuple(state["entrance"]),
                         tuple(state["exit"]))


# -- one day ---------------------------------------------------------------------

class _Day:
    """Mutable working copy of one day; built from the morning state."""

    def __init__(self, state: dict, rng: np.random.Generator):
        c = CHOICES
        self.c = c
        self.state = state
        self.rng = rng
        self.T = TICKS_PER_DAY
        self.K = int(c["update_every"])
        g = self.graph = path_graph(state)
        rides, shops = state["rides"], state["shops"]
        self.R = R = len(rides)
        self.A = A = R + len(shops)
        atts = rides + shops
        # attraction tables
        self.att_tile = np.array([a["y"] * N + a["x"] for a in atts], dtype=np.int64)
        access = []
        for a in atts:
            cands = [(a["y"] + dy) * N + a["x"] + dx for dx, dy in _NEIGHBOURS
                     if 0 <= a["x"] + dx < N and 0 <= a["y"] + dy < N
                     and g.is_path[(a["y"] + dy) * N + a["x"] + dx]]
            # the touching path tile closest to the entrance (ties: first in N, E, S, W order)
            access.append(min(cands, key=lambda t: g.dist[g.entrance, t]) if cands else g.entrance)
        self.access = np.array(access, dtype=np.int64)
        self.price = np.array([cents(a["price"]) for a in atts], dtype=np.int64)
        self.is_ride = np.zeros(A, dtype=bool)
        self.is_ride[:R] = True
        sub = [a["subtype"] for a in atts]
        cls = [a["subclass"] for a in atts]
        spec = np.array([s == "specialty" for s in sub], dtype=bool)
        self.kind_code = np.array([
            0 if i < R else {"drink": 1, "food": 2}.get(sub[i], 3 + ("yellow", "blue", "green", "red").index(cls[i]))
            for i in range(A)], dtype=np.int64)  # 0 ride, 1 drink, 2 food, 3 souvenir, 4 info, 5 ATM, 6 billboard
        eff = {k: np.zeros(A) for k in ("hunger_reduction", "thirst_reduction", "happiness_boost",
                                         "energy_boost", "caffeinated_steps", "money_withdrawal",
                                         "thirst_boost", "hunger_boost")}
        for i in range(R, A):
            p = SHOPS[sub[i]][cls[i]]
            for k in eff:
                eff[k][i] = p.get(k, 0.0)
        self.eff = eff
        self.feeds = eff["hunger_reduction"] > 0
        self.quenches = eff["thirst_reduction"] > 0
        # target weights: any ride, food or drink shop; specialty shops are never sought out
        self.wbase = (~spec).astype(np.float64)
        # ride tables
        self.cap = np.array([r["capacity"] for r in rides], dtype=np.int64)
        self.excite = np.array([r["excitement"] for r in rides], dtype=np.float64)
        self.intens = np.array([r["intensity"] for r in rides], dtype=np.float64)
        self.op_cost = np.array([cents(r["cost_per_operation"]) for r in rides], dtype=np.int64)
        self.brate = np.array([r["breakdown_rate"] for r in rides], dtype=np.float64)
        self.duration = [int(c[f"ride_duration_{r['subtype']}"]) for r in rides]
        self.broken = [bool(r["broken"]) for r in rides]
        self.progress = [float(r["repair_progress"]) for r in rides]
        self.broken_since = [0 if b else -1 for b in self.broken]
        self.broken_ticks = [0] * R
        self.n_broken = sum(self.broken)
        self.run_end = [-1] * R
        self.riders: list[list[int]] = [[] for _ in range(R)]
        self.queue: list[deque] = [deque() for _ in range(R)]
        self.load_start = [-1] * R
        self.depart_at = [-1] * R
        self.finish_sched: dict[int, list[int]] = {}
        self.depart_sched: dict[int, list[int]] = {}
        self.ops = [0] * R
        self.rides_taken = [0] * R
        self.att_rev = np.zeros(A, dtype=np.int64)
        self.att_customers = np.zeros(A, dtype=np.int64)
        # adjacency: which attractions touch each path tile; which attraction tiles a janitor there cleans
        adj = np.full((NT + 1, 4), -1, dtype=np.int64)
        adj_tiles = np.full((NT + 1, 4), SENTINEL, dtype=np.int64)
        fill = np.zeros(NT + 1, dtype=np.int64)
        for i in range(A):
            t = int(self.att_tile[i])
            x, y = t % N, t // N
            for dx, dy in _NEIGHBOURS:
                if 0 <= x + dx < N and 0 <= y + dy < N:
                    p = (y + dy) * N + x + dx
                    if g.is_path[p]:
                        adj[p, fill[p]] = i
                        adj_tiles[p, fill[p]] = t
                        fill[p] += 1
        self.adj, self.adj_tiles = adj, adj_tiles
        self.has_adj = fill > 0
        # nearness of every attraction from every tile
        if A:
            self.near = np.exp(-g.dist[self.access].T.astype(np.float64) / c["near_scale"])  # (NT+1, A)
        else:
            self.near = np.zeros((NT + 1, 0))
        self.atm = np.flatnonzero(self.kind_code == 5)
        # dirt (1 - cleanliness) on every tile, plus the sentinel
        clean = np.asarray(state["cleanliness"], dtype=np.float64).reshape(-1)
        self.dirt = np.zeros(NT + 1)
        self.dirt[:NT] = np.clip(1.0 - clean, 0.0, 1.0)
        # staff
        staff = state["staff"]
        self.jan = [i for i, s in enumerate(staff) if s["subtype"] == "janitor"]
        self.mech = [i for i, s in enumerate(staff) if s["subtype"] == "mechanic"]
        self.jpos = np.array([staff[i]["y"] * N + staff[i]["x"] for i in self.jan], dtype=np.int64)
        self.jtgt = self.jpos.copy()
        self.jidle = np.zeros(len(self.jan), dtype=bool)  # found nothing worth a trip at the last look
        self.mpos = np.array([staff[i]["y"] * N + staff[i]["x"] for i in self.mech], dtype=np.int64)
        # guests: one slot per unit of park capacity
        self.G = G = int(sum(r["capacity"] for r in rides))
        self.status = np.zeros(G, dtype=np.int8)
        self.pos = np.zeros(G, dtype=np.int64)
        self.goal = np.zeros(G, dtype=np.int64)
        self.tgt = np.full(G, -1, dtype=np.int64)
        self.last = np.full(G, -1, dtype=np.int64)
        self.ride_of = np.full(G, -1, dtype=np.int64)
        self.money = np.zeros(G, dtype=np.int64)
        self.energy = np.zeros(G)
        self.hb = np.zeros(G)     # hunger = hb + hunger_rate * t
        self.tb = np.zeros(G)     # thirst = tb + thirst_rate * t
        self.happy = np.zeros(G)
        self.pref = np.zeros(G)
        self.patience = np.zeros(G)
        self.caff = np.zeros(G)
        self.souv = np.zeros(G)
        self.atm_uses = np.zeros(G)
        self.informed = np.zeros(G, dtype=bool)
        self.visits = np.zeros((G, max(A, 1)), dtype=np.float64)
        self.qtoken = np.zeros(G, dtype=np.int64)
        self.free = list(range(G - 1, -1, -1))
        self.n_active = 0
        self.n_caff = 0
        # day totals
        self.ride_rev = 0
        self.shop_rev = 0
        self.ride_ops_cost = 0
        self.entered = 0
        self.turned_away = 0
        self.peak = 0
        self.happy_exits = 0
        self.exit_happiness = 0.0
        self.left = [0] * len(LEAVE_REASONS)
        self.retarget: list[np.ndarray] = []
        self.visit_g: list[np.ndarray] = []
        self.visit_a: list[np.ndarray] = []

    # -- guests -----------------------------------------------------------------
    def spawn(self, k: int, t: int) -> None:
        c, rng = self.c, self.rng
        k = min(k, len(self.free))
        if k <= 0:
            return
        gs = np.array([self.free.pop() for _ in range(k)], dtype=np.int64)
        self.status[gs] = DECIDE
        self.pos[gs] = self.graph.entrance
        self.last[gs] = -1
        self.money[gs] = rng.integers(int(c["money_low"]), int(c["money_high"]) + 1, k) * 100
        self.energy[gs] = rng.uniform(c["energy_low"], c["energy_high"], k)
        self.hb[gs] = rng.uniform(c["need_low"], c["need_high"], k) - c["hunger_rate"] * t
        self.tb[gs] = rng.uniform(c["need_low"], c["need_high"], k) - c["thirst_rate"] * t
        self.happy[gs] = rng.uniform(c["happy_low"], c["happy_high"], k)
        self.pref[gs] = np.clip(rng.normal(c["pref_intensity_mean"], c["pref_intensity_sd"], k), 0, 10)
        self.patience[gs] = rng.uniform(c["patience_low"], c["patience_high"], k)
        self.caff[gs] = 0
        self.souv[gs] = 0
        self.atm_uses[gs] = 0
        self.informed[gs] = False
        self.visits[gs] = 0
        self.n_active += k
        self.entered += k
        self.peak = max(self.peak, self.n_active)
        self.retarget.append(gs)

    def set_leaving(self, gs: np.ndarray, reason: str | np.ndarray) -> None:
        if gs.size == 0:
            return
        self.status[gs] = LEAVE
        self.goal[gs] = self.graph.exit
        self.tgt[gs] = -1
        if isinstance(reason, str):
            self.left[_LEAVE_CODE[reason]] += int(gs.size)
        else:
            for code, n in enumerate(np.bincount(reason, minlength=len(LEAVE_REASONS))):
                self.left[code] += int(n)

    def depart_guests(self, gs: np.ndarray) -> None:
        """Guests walking out through the exit (or still inside at closing)."""
        if gs.size == 0:
            return
        h = np.clip(self.happy[gs], 0.0, 1.0)
        self.happy_exits += int((h >= self.c["happy_exit"]).sum())
        self.exit_happiness += float(h.sum())
        self.status[gs] = FREE
        self.free.extend(gs.tolist())
        self.n_active -= int(gs.size)
        if self.n_caff:
            self.caff[gs] = 0

    def choose_targets(self, gs: np.ndarray, t: int) -> None:
        """Guests pick their next attraction, or leave when they must (or have nothing to do)."""
        c = self.c
        gs = gs[self.status[gs] != FREE]
        if gs.size == 0:
            return
        hunger = self.hb[gs] + c["hunger_rate"] * t
        thirst = self.tb[gs] + c["thirst_rate"] * t
        why = np.full(gs.size, -1, dtype=np.int64)
        why[self.happy[gs] < c["leave_happiness"]] = _LEAVE_CODE["unhappy"]
        why[thirst >= 1.0] = _LEAVE_CODE["thirst"]
        why[hunger >= 1.0] = _LEAVE_CODE["hunger"]
        why[self.energy[gs] <= 0] = _LEAVE_CODE["energy"]
        why[self.money[gs] < cents(c["min_money"])] = _LEAVE_CODE["money"]
        if self.A:
            w = self.wbase * (1.0 + c["need_boost"] * (np.outer(hunger > c["need_threshold"], self.feeds)
                                                        + np.outer(thirst > c["need_threshold"], self.quenches))
                              + c["unhappy_ride_boost"] * np.outer(self.happy[gs] < c["unhappy_threshold"],
                                                                   self.is_ride))
            w /= 1.0 + self.visits[gs, :self.A]
            w *= self.near[self.pos[gs]]
            lst = self.last[gs]
            has = lst >= 0
            if has.any():
                w[np.flatnonzero(has), lst[has]] = 0.0
            inf = self.informed[gs]
            if inf.any():
                rows = np.flatnonzero(inf)
                w[np.ix_(rows, np.arange(self.R))] *= self.price[None, :self.R] <= self.money[gs[rows], None]
            cs = np.cumsum(w, axis=1)
            tot = cs[:, -1]
            r = self.rng.random(gs.size) * tot
            choice = np.minimum((cs < r[:, None]).sum(axis=1), self.A - 1)
            why[(why < 0) & (tot <= 0)] = _LEAVE_CODE["nothing_to_do"]
        else:
            choice = np.zeros(gs.size, dtype=np.int64)
            why[why < 0] = _LEAVE_CODE["nothing_to_do"]
        go = why < 0
        stay = gs[go]
        self.status[stay] = WALK
        self.tgt[stay] = choice[go]
        self.goal[stay] = self.access[choice[go]]
        self.set_leaving(gs[~go], why[~go])

    def visit(self, gs: np.ndarray, as_: np.ndarray, t: int) -> None:
        """Guests reach attractions (their target, or one they pass by)."""
        c, rng = self.c, self.rng
        self.last[gs] = as_
        self.visits[gs, as_] += 1.0
        again = []
        isr = self.is_ride[as_]
        # rides: broken, unaffordable or too dirty rides turn guests away; others queue or board
        if isr.any():
            rg, ra = gs[isr], as_[isr]
            broke = np.array([self.broken[a] for a in ra.tolist()], dtype=bool)
            poor = self.price[ra] > self.money[rg]
            clean = 1.0 - self.dirt[self.att_tile[ra]]
            dirty = rng.random(rg.size) < (c["dirty_ride"] - clean) / c["dirty_ride"]
            bad = broke | poor
            self.happy[rg[bad]] -= c["reject_penalty"]
            dirty &= ~bad
            self.happy[rg[dirty]] -= c["dirty_refuse_penalty"]
            bad |= dirty
            again.append(rg[bad])
            for g, a in zip(rg[~bad].tolist(), ra[~bad].tolist()):
                self.join_ride(g, a, t)
        # shops: pay and enjoy, or be turned away
        iss = ~isr
        if iss.any():
            sg, sa = gs[iss], as_[iss]
            price = self.price[sa]
            poor = price > self.money[sg]
            self.happy[sg[poor]] -= c["reject_penalty"]
            again.append(sg[poor])
            ok = ~poor
            sg, sa, price = sg[ok], sa[ok], price[ok]
            if sg.size:
                self.money[sg] -= price
                self.shop_rev += int(price.sum())
                np.add.at(self.att_rev, sa, price)
                np.add.at(self.att_customers, sa, 1)
                e = self.eff
                lo_h = -c["hunger_rate"] * t
                lo_t = -c["thirst_rate"] * t
                self.hb[sg] = np.maximum(self.hb[sg] - e["hunger_reduction"][sa], lo_h)
                self.tb[sg] = np.maximum(self.tb[sg] - e["thirst_reduction"][sa], lo_t)
                self.happy[sg] += e["happiness_boost"][sa] * np.where(
                    self.kind_code[sa] == 3, c["souvenir_decay"] ** self.souv[sg], 1.0)
                kind = self.kind_code[sa]
                self.souv[sg] += kind == 3
                boost = e["energy_boost"][sa]
                if boost.any():
                    self.energy[sg] += boost
                    steps = e["caffeinated_steps"][sa]
                    self.caff[sg] = np.maximum(self.caff[sg], steps)
                    self.n_caff = int((self.caff > 0).sum())
                self.informed[sg[kind == 4]] = True
                atm = kind == 5
                if atm.any():
                    ga = sg[atm]
                    amount = np.maximum(c["atm_decay"] ** self.atm_uses[ga] * e["money_withdrawal"][sa[atm]],
                                        5.0)
                    self.money[ga] += np.round(amount * 100).astype(np.int64)
                    self.atm_uses[ga] += 1
                bill = kind == 6
                to_atm = np.zeros(0, dtype=np.int64)
                if bill.any():
                    gb = sg[bill]
                    cap = c["billboard_cap"]
                    self.hb[gb] = np.minimum(self.hb[gb] + e["hunger_boost"][sa[bill]], cap + lo_h)
                    self.tb[gb] = np.minimum(self.tb[gb] + e["thirst_boost"][sa[bill]], cap + lo_t)
                    self.visits[gb] = 0.0
                    if self.atm.size:
                        to_atm = gb[self.money[gb] < 20 * 100]
                        if to_atm.size:
                            d = self.graph.dist[self.access[self.atm][None, :], self.pos[to_atm][:, None]]
                            best = self.atm[np.argmin(d, axis=1)]
                            self.tgt[to_atm] = best
                            self.goal[to_atm] = self.access[best]
                            self.status[to_atm] = WALK
                # customers sometimes drop litter at the shop
                lit = rng.random(sg.size) < c["shop_litter_prob"]
                if lit.any():
                    np.add.at(self.dirt, self.att_tile[sa[lit]], c["litter_amount"])
                if to_atm.size:
                    sg = np.setdiff1d(sg, to_atm)
                again.append(sg)
        for a in again:
            if a.size:
                self.status[a] = DECIDE
                self.retarget.append(a)

    # -- rides --------------------------------------------------------------------
    def join_ride(self, g: int, r: int, t: int) -> None:
        if self.run_end[r] < 0 and len(self.riders[r]) < self.cap[r]:
            self.board(g, r, t)
        else:
            self.status[g] = QUEUE
            self.ride_of[g] = r
            self.qtoken[g] += 1
            self.queue[r].append((g, int(self.qtoken[g])))

    def board(self, g: int, r: int, t: int) -> None:
        p = int(self.price[r])
        self.money[g] -= p
        self.ride_rev += p
        self.att_rev[r] += p
        self.att_customers[r] += 1
        self.status[g] = RIDE
        self.ride_of[g] = r
        riders = self.riders[r]
        riders.append(g)
        if len(riders) == 1:
            self.load_start[r] = t
        empty = int(self.cap[r]) - len(riders)
        when = max(t, self.load_start[r] + math.ceil(self.c["ride_wait_per_seat"] * empty))
        if when != self.depart_at[r]:
            self.depart_at[r] = when
            self.depart_sched.setdefault(when, []).append(r)

    def board_queue(self, r: int, t: int) -> None:
        q = self.queue[r]
        while q and len(self.riders[r]) < self.cap[r] and self.run_end[r] < 0:
            g, tok = q.popleft()
            if self.status[g] == QUEUE and self.qtoken[g] == tok and self.ride_of[g] == r:
                self.board(g, r, t)

    def flush_queue(self, r: int) -> None:
        q = self.queue[r]
        out = [g for g, tok in q if self.status[g] == QUEUE and self.qtoken[g] == tok and self.ride_of[g] == r]
        q.clear()
        if out:
            out = np.array(out, dtype=np.int64)
            self.happy[out] -= self.c["reject_penalty"]
            self.status[out] = DECIDE
            self.retarget.append(out)

    def depart(self, r: int, t: int) -> None:
        end = t + self.duration[r]
        self.run_end[r] = end
        self.finish_sched.setdefault(end, []).append(r)
        self.ops[r] += 1
        self.rides_taken[r] += len(self.riders[r])
        self.ride_operations_cost_add(r)

    def ride_operations_cost_add(self, r: int) -> None:
        self.ride_ops_cost += int(self.op_cost[r])

    def finish(self, r: int, t: int) -> None:
        c = self.c
        gs = np.array(self.riders[r], dtype=np.int64)
        self.riders[r] = []
        self.run_end[r] = -1
        self.load_start[r] = -1
        self.depart_at[r] = -1
        self.happy[gs] += (c["ride_happy_base"] + c["ride_happy_excitement"] * self.excite[r]
                           - c["ride_happy_intensity_gap"] * np.abs(self.intens[r] - self.pref[gs]))
        self.energy[gs] -= c["ride_energy"]
        self.status[gs] = DECIDE
        self.retarget.append(gs)
        if self.rng.random() < self.brate[r]:
            self.broken[r] = True
            self.progress[r] = 0.0
            self.broken_since[r] = t
            self.n_broken += 1
            self.flush_queue(r)
        else:
            self.board_queue(r, t)

    def repaired(self, r: int, t: int) -> None:
        self.broken[r] = False
        self.progress[r] = 0.0
        self.broken_ticks[r] += t - self.broken_since[r]
        self.broken_since[r] = -1
        self.n_broken -= 1

    # -- staff ----------------------------------------------------------------------
    def janitors(self, t: int) -> None:
        c, g, dirt = self.c, self.graph, self.dirt
        jpos = self.jpos
        here = dirt[jpos] + dirt[self.adj_tiles[jpos]].sum(axis=1)
        cleaning = here > c["janitor_threshold"]
        if cleaning.any():
            jc = jpos[cleaning]
            k = np.bincount(jc, minlength=NT + 1).astype(np.float64)
            amount = c["clean_rate"] * k
            dirt[jc] = np.maximum(dirt[jc] - amount[jc], 0.0)
            at = self.adj_tiles[jc]
            dirt[at] = np.maximum(dirt[at] - amount[jc][:, None], 0.0)
            dirt[SENTINEL] = 0.0
        moving = ~cleaning
        if not moving.any():
            return
        if t % int(c["janitor_retarget"]) == 0 or (moving & (self.jtgt == jpos) & ~self.jidle).any():
            pt = g.path_tiles
            score = dirt[pt] + dirt[self.adj_tiles[pt]].sum(axis=1)
            d = g.dist[jpos][:, pt]
            val = score[None, :] - c["janitor_distance_cost"] * d
            val[d > c["janitor_radius"]] = -np.inf
            best = np.argmax(val, axis=1)
            worth = score[best] > c["janitor_threshold"]
            newt = np.where(worth, pt[best], jpos)
            self.jtgt = np.where(moving, newt, self.jtgt)
            self.jidle = moving & ~worth
        if self.jidle.all():
            return
        jm = np.flatnonzero(moving)
        self.jpos[jm] = g.next[self.jtgt[jm], jpos[jm]]

    def mechanics(self, t: int) -> None:
        g = self.graph
        broken = [r for r in range(self.R) if self.broken[r]]
        acc = self.access[broken]
        d = g.dist[acc[None, :], self.mpos[:, None]]  # (mechanics, broken rides)
        pick = np.argmin(d, axis=1)
        goal = acc[pick]
        there = self.mpos == goal
        work = 1.0 / self.c["repair_work"]
        for i in np.flatnonzero(there).tolist():
            r = broken[pick[i]]
            if self.broken[r]:
                self.progress[r] += work
                if self.progress[r] >= 1.0 - 1e-9:
                    self.repaired(r, t)
        mv = np.flatnonzero(~there)
        self.mpos[mv] = g.next[goal[mv], self.mpos[mv]]

    # -- periodic needs -----------------------------------------------------------
    def periodic(self, t: int) -> None:
        c, K = self.c, self.K
        act = np.flatnonzero(self.status)
        if act.size == 0:
            return
        st = self.status[act]
        hunger = self.hb[act] + c["hunger_rate"] * t
        thirst = self.tb[act] + c["thirst_rate"] * t
        inside = (st == QUEUE) | (st == RIDE)
        tile = self.pos[act].copy()
        if inside.any():
            tile[inside] = self.att_tile[self.ride_of[act[inside]]]
        clean = 1.0 - self.dirt[tile]
        pain = (hunger > c["need_pain"]).astype(np.float64) + (thirst > c["need_pain"])
        h = self.happy[act] + K * (c["happiness_drift"] - c["need_pain_rate"] * pain
                                   - c["dirty_tile_rate"] * np.maximum(c["dirty_tile"] - clean, 0.0))
        np.clip(h, 0.0, 1.0, out=h)
        self.happy[act] = h
        # litter: unhappy guests drop more
        p = K * (c["litter_base"] + c["litter_unhappy"] * (1.0 - h))
        lit = self.rng.random(act.size) < p
        if lit.any():
            np.add.at(self.dirt, tile[lit], c["litter_amount"])
            np.minimum(self.dirt, 1.0, out=self.dirt)
        # queues wear patience out
        q = st == QUEUE
        if q.any():
            gq = act[q]
            self.patience[gq] -= K
            quit_ = gq[self.patience[gq] <= 0]
            if quit_.size:
                self.happy[quit_] -= c["queue_quit_penalty"]
                self.qtoken[quit_] += 1
                self.set_leaving(quit_, "patience")
        # walkers with an exhausted need head home
        w = st == WALK
        if w.any():
            why = np.full(act.size, -1, dtype=np.int64)
            why[h < c["leave_happiness"]] = _LEAVE_CODE["unhappy"]
            why[thirst >= 1.0] = _LEAVE_CODE["thirst"]
            why[hunger >= 1.0] = _LEAVE_CODE["hunger"]
            why[self.energy[act] <= 0] = _LEAVE_CODE["energy"]
            go = w & (why >= 0)
            if go.any():
                self.set_leaving(act[go], why[go])
        if self.n_caff:
            self.caff[act] = np.maximum(self.caff[act] - K, 0)
            self.n_caff = int((self.caff > 0).sum())

    # -- the day ------------------------------------------------------------------
    def run(self) -> None:
        c, rng, T, K = self.c, self.rng, self.T, self.K
        g = self.graph
        open_ticks = int(c["arrival_ticks"])
        p_enter = min(1.0, max(0.0, c["enter_prob_base"] + c["enter_prob_slope"] * self.state["park_rating"] / 100))
        lam = c["arrival_per_capacity"] * self.G * p_enter
        arrivals = rng.poisson(lam, open_ticks) if self.G else np.zeros(open_ticks, dtype=np.int64)
        nxt, is_ride = g.next, self.is_ride
        for t in range(T):
            if t < open_ticks and arrivals[t]:
                room = self.G - self.n_active
                k = int(arrivals[t])
                if k > room:
                    self.turned_away += k - room
                self.spawn(min(k, room), t)
            fin = self.finish_sched.pop(t, None)
            if fin:
                for r in fin:
                    self.finish(r, t)
            if self.n_active:
                mv = np.flatnonzero(self.status & 1)
                if mv.size:
                    goal = self.goal[mv]
                    p = nxt[goal, self.pos[mv]]
                    if self.n_caff:
                        fast = self.caff[mv] > 0
                        p[fast] = nxt[goal[fast], p[fast]]
                    self.pos[mv] = p
                    self.energy[mv] -= 1.0
                    arrived = p == goal
                    walking = self.status[mv] == WALK
                    if arrived.any():
                        out = mv[arrived & ~walking]
                        if out.size:
                            self.depart_guests(out)
                        there = arrived & walking
                        if there.any():
                            gv = mv[there]
                            self.visit_g.append(gv)
                            self.visit_a.append(self.tgt[gv])
                    # passing by: a walker notices one touching attraction at random
                    cand = walking & ~arrived & self.has_adj[p]
                    if cand.any() and self.A:
                        cg = mv[cand]
                        a = self.adj[p[cand], rng.integers(0, 4, cg.size)]
                        ok = (a >= 0) & (a != self.tgt[cg]) & (a != self.last[cg])
                        if ok.any():
                            cg, a = cg[ok], a[ok]
                            prob = self.pass_prob(cg, a, t)
                            hit = rng.random(cg.size) < prob
                            if hit.any():
                                self.visit_g.append(cg[hit])
                                self.visit_a.append(a[hit])
                if self.visit_g:
                    vg = np.concatenate(self.visit_g)
                    va = np.concatenate(self.visit_a)
                    self.visit_g, self.visit_a = [], []
                    self.visit(vg, va, t)
            dep = self.depart_sched.pop(t, None)
            if dep:
                for r in dep:
                    if self.run_end[r] < 0 and self.riders[r] and self.depart_at[r] == t:
                        self.depart(r, t)
            if self.retarget:
                rg = np.concatenate(self.retarget)
                self.retarget = []
                self.choose_targets(rg, t)
            if self.jpos.size:
                self.janitors(t)
            if self.n_broken and self.mpos.size:
                self.mechanics(t)
            if self.n_active and t % K == K - 1:
                self.periodic(t)
        # closing time: everyone still inside goes home
        rest = np.flatnonzero(self.status)
        self.left[_LEAVE_CODE["closing"]] += int(rest.size)
        self.depart_guests(rest)
        for r in range(self.R):
            if self.broken[r]:
                self.broken_ticks[r] += T - self.broken_since[r]

    def pass_prob(self, gs: np.ndarray, a: np.ndarray, t: int) -> np.ndarray:
        c = self.c
        kind = self.kind_code[a]
        hunger = self.hb[gs] + c["hunger_rate"] * t
        thirst = self.tb[gs] + c["thirst_rate"] * t
        need = ((self.feeds[a] & (hunger > c["need_threshold"] - 0.1))
                | (self.quenches[a] & (thirst > c["need_threshold"] - 0.1)))
        p = np.select(
            [kind == 0, kind <= 2, kind == 3, kind == 4, kind == 5, kind == 6],
            [c["pass_ride"] / (1.0 + self.visits[gs, a]),
             np.where(need, c["pass_need"], c["pass_shop"]),
             np.full(a.size, c["pass_souvenir"]),
             np.where(self.informed[gs], 0.0, c["pass_info"]),
             np.where(self.money[gs] < 20 * 100, c["pass_atm_poor"], c["pass_atm"]),
             np.full(a.size, c["pass_billboard"])])
        return p

    # -- the next morning ---------------------------------------------------------------
    def next_state(self) -> dict:
        c, s = self.c, copy_park_state(self.state)
        T = self.T
        R = self.R
        revenue = self.ride_rev + self.shop_rev
        shop_ops = sum(cents(x["operating_cost"]) for x in s["shops"])
        salaries = sum(cents(x["salary"]) for x in s["staff"])
        expenses = self.ride_ops_cost + shop_ops + salaries
        money = cents(s["money"]) + revenue - expenses
        s["money"] = dollars(money)
        s["revenue"], s["ride_revenue"], s["shop_revenue"] = dollars(revenue), dollars(self.ride_rev), dollars(self.shop_rev)
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
        for k, i in enumerate(self.jan):
            s["staff"][i]["x"], s["staff"][i]["y"] = int(self.jpos[k] % N), int(self.jpos[k] // N)
        for k, i in enumerate(self.mech):
            s["staff"][i]["x"], s["staff"][i]["y"] = int(self.mpos[k] % N), int(self.mpos[k] // N)
        clean = np.round(1.0 - np.clip(self.dirt[:NT], 0.0, 1.0), 3)
        s["cleanliness"] = clean.reshape(N, N).tolist()
        care = self.graph.is_path[:NT].copy()
        if self.A:
            care[self.att_tile] = True
        s["min_cleanliness"] = float(clean[care].min())
        s["mean_cleanliness"] = round(float(clean[care].mean()), 4)
        s["broken_rides"] = int(sum(self.broken))
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
    """The evening rating (0..100): a weighted blend of yesterday's rating and today's park.

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

    Returns ``(next_state, valid, info)`` with ``info`` holding ``error`` and ``reason`` for
    invalid actions, and ``done``.  The input state is not modified.  A finished game
    (bankrupt or out of days) stays as it is.
    """
    after, valid, error, reason = apply_action(state, action)
    if reason == "game_over":
        return after, False, {"error": error, "reason": reason, "done": True}
    nxt = simulate_day(after, rng)
    return nxt, valid, {"error": error, "reason": reason, "done": bool(nxt["game_over"])}


__all__ = ["simulate_day", "transition", "park_rating", "path_graph", "PathGraph"]
