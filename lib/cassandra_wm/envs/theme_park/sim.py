"""The day engine: the Mini Amusement Parks rules, tick by tick, with guests as numpy arrays.

:func:`simulate_day` takes the state on a morning (after the day's action) and a numpy generator
and returns the next morning's state; :func:`transition` applies an action first.  They read
nothing but the state, so planners may use them as an oracle from any state.

The rules are the public game's (``DESIGN_NOTES.md`` lists them); the order of events within a
tick is the game's: new guests arrive, every guest acts, updates their needs and may litter, the
rides operate, the staff work.  Guests are processed together (numpy over all guests in the park)
but in the game's order wherever order matters (ride queues fill in arrival order, a shop that
runs out of stock turns away the guests after the one who emptied it).
"""
from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from .actions import apply_action
from .params import COLOURS, GRID_SIZE, RIDE_TYPES, SHOP_TYPES, TICKS_PER_DAY, Params, get_params
from .state import EXIT_REASONS, asset_value, copy_park_state, park_excitement, r2, refresh

N = GRID_SIZE
NT = N * N                      # tile index = x * N + y
MOVES = ((0, 1), (1, 0), (0, -1), (-1, 0))   # the game's move order (dx, dy)
# tile kinds
EMPTY, PATH, WATER, ENTRANCE, EXIT, RIDE, SHOP = range(7)
# shop subtypes as codes
FOOD, DRINK, SPECIALTY = 0, 1, 2
_SUB_CODE = {"food": FOOD, "drink": DRINK, "specialty": SPECIALTY}
R_CODE = {r: i for i, r in enumerate(EXIT_REASONS)}


def _nz(mask: np.ndarray) -> np.ndarray:
    return mask.nonzero()[0]
_TARGET_TYPE_REASON = {"attractions": R_CODE["Too few unique attractions"], "rides": R_CODE["Too few unique rides"],
                       "food shops": R_CODE["Too few unique food shops"],
                       "drink shops": R_CODE["Too few unique drink shops"]}


# -- routes (fixed per layout) ------------------------------------------------------

class Routes:
    """Next step and distance between tiles, built as the game builds its routing table.

    ``dist[src, dst]`` is the number of steps (-1: no route) and ``step[src, dst]`` the next tile;
    routes go along paths (entrance and exit included); an attraction or empty tile next to a path
    is entered or left from a neighbouring path tile, never from another attraction.
    """

    def __init__(self, paths: frozenset, entrance: tuple, exit_: tuple):
        walk = np.zeros(NT, bool)
        path = np.zeros(NT, bool)
        for (x, y) in paths:
            walk[x * N + y] = path[x * N + y] = True
        for (x, y) in (entrance, exit_):
            walk[x * N + y] = True
        adj_path = np.zeros(NT, bool)
        nbrs = [[] for _ in range(NT)]
        for x in range(N):
            for y in range(N):
                t = x * N + y
                for dx, dy in MOVES:
                    a, b = x + dx, y + dy
                    if 0 <= a < N and 0 <= b < N:
                        nbrs[t].append(a * N + b)
                adj_path[t] = any(path[u] for u in nbrs[t])
        self.walkable, self.adj_path, self.nbrs = walk, adj_path, nbrs
        self.dist = np.full((NT, NT), -1, np.int16)
        self.step = np.full((NT, NT), -1, np.int16)
        ex = exit_[0] * N + exit_[1]
        order = [ex] + [t for t in range(NT) if t != ex]
        for dest in order:
            if not (walk[dest] or adj_path[dest]):
                continue
            if dest != ex and self.dist[dest, ex] < 0:
                continue
            self._bfs(dest, path[dest])

    def _bfs(self, dest: int, dest_is_path: bool) -> None:
        walk, adj = self.walkable, self.adj_path
        dist, step = self.dist, self.step
        seen = {dest}
        dist[dest, dest], step[dest, dest] = 0, dest
        queue = deque([(dest, 0)])
        while queue:
            node, d = queue.popleft()
            for nb in self.nbrs[node]:
                if nb in seen:
                    continue
                w = walk[nb]
                if w:
                    queue.append((nb, d + 1))
                if (adj[nb] or w) and (node != dest or dest_is_path or w):
                    seen.add(nb)
                    dist[nb, dest], step[nb, dest] = d + 1, node


_ROUTES: dict = {}


def routes_for(state: dict) -> Routes:
    key = (frozenset((t["x"], t["y"]) for t in state["paths"]), tuple(state["entrance"]), tuple(state["exit"]))
    r = _ROUTES.get(key)
    if r is None:
        if len(_ROUTES) > 32:
            _ROUTES.clear()
        r = _ROUTES[key] = Routes(*key)
    return r


# -- the park rating (computed each morning, before the guests come) ----------------------

def park_rating(state: dict, p: Params, clean: np.ndarray) -> tuple[float, float]:
    """(rating, excitement term) from yesterday's happiness and uptimes and today's rides and dirt."""
    rules = p.rules
    rides, shops = state["rides"]["ride_list"], state["shops"]["shop_list"]
    exc = park_excitement(rides, rules)
    pen = 0.0
    for u in [r.get("unnorm_uptime", 0.0) / TICKS_PER_DAY for r in rides] + [_shop_uptime(s) for s in shops]:
        pen += 4 if u < 0.25 else 2 if u < 0.5 else 1 if u < 0.75 else 0.1 if u < 0.9 else 0
    intensity = (sum(r["intensity"] for r in rides) / len(rides)) if rides else 1.0
    c = clean
    cpen = 8 * np.sum(c < 0.2) + 4 * np.sum((c >= 0.2) & (c < 0.4)) + 2 * np.sum((c >= 0.4) & (c < 0.6)) \
        + np.sum((c >= 0.6) & (c < 0.8))
    rating = (rules["rating_base"] + state["hidden"]["prev_guest_happiness"] * rules["rating_happiness"] + exc
              - min(rules["rating_clean_max"], float(cpen)) - min(rules["rating_uptime_max"], pen)
              - abs(5 - intensity) * rules["rating_intensity"])
    return float(min(rules["rating_max"], max(rules["rating_min"], rating))), exc


def _shop_uptime(s: dict) -> float:
    att = s.get("services_attempted", 0)
    return round(s["guests_served"] / att * 100) / 100 if att > 0 else 1.0


# -- one day -------------------------------------------------------------------------

class _Day:
    """Everything that lives for one day; :meth:`run` plays it and writes the state back."""

    def __init__(self, state: dict, p: Params, rng: np.random.Generator):
        self.s, self.p, self.rng, self.rules = state, p, rng, p.rules
        rt = self.rt = routes_for(state)
        self.money = int(state["money"])
        self.revenue = int(state["revenue"]) if state["hidden"].get("parse_error") else 0
        self.expenses = int(state["expenses"]) if state["hidden"].get("parse_error") else 0
        self.revenue += int(state["hidden"].get("action_refund", 0))
        self.expenses += int(state["hidden"].get("action_cost", 0))
        # tiles
        kind = np.zeros(NT, np.int8)
        for t in state["paths"]:
            kind[t["x"] * N + t["y"]] = PATH
        for t in state["waters"]:
            kind[t["x"] * N + t["y"]] = WATER
        ex, ey = state["entrance"]
        self.entrance = ex * N + ey
        xx, xy = state["exit"]
        self.exit = xx * N + xy
        kind[self.entrance], kind[self.exit] = ENTRANCE, EXIT
        self.rides = state["rides"]["ride_list"]
        self.shops = state["shops"]["shop_list"]
        R, S = len(self.rides), len(self.shops)
        self.R, self.A = R, R + S
        self.att_tile = np.array([a["x"] * N + a["y"] for a in self.rides + self.shops], np.int64)
        for i, t in enumerate(self.att_tile):
            kind[t] = RIDE if i < R else SHOP
        self.kind = kind
        self.clean = np.array(state["hidden"]["cleanliness"], float).reshape(NT)
        self.tile_att = np.full(NT, -1, np.int64)
        self.tile_att[self.att_tile] = np.arange(self.A)
        # attraction tables (index A is the exit)
        A = self.A
        self.att_sub = np.full(A + 1, -1, np.int64)      # shops: FOOD / DRINK / SPECIALTY; rides: -1
        self.att_key = np.zeros(A + 1, np.int64)         # visit-count key
        self.att_price = np.zeros(A + 1)
        self.att_col = np.zeros(A + 1, np.int64)
        self.ride_w = np.zeros(A + 1)                    # excitement + capacity / 8 (rides)
        for i, r in enumerate(self.rides):
            c = COLOURS.index(r["subclass"])
            self.att_key[i] = RIDE_TYPES.index(r["subtype"]) * 4 + c
            self.att_price[i] = r["ticket_price"]
            self.att_col[i] = c
            self.ride_w[i] = r["excitement"] + r["capacity"] / 8
        for j, s in enumerate(self.shops):
            i = R + j
            c = COLOURS.index(s["subclass"])
            self.att_sub[i] = _SUB_CODE[s["subtype"]]
            self.att_key[i] = 12 + SHOP_TYPES.index(s["subtype"]) * 4 + c
            self.att_price[i] = s["item_price"]
            self.att_col[i] = c
        self.att_key[A] = 24
        self.is_ride = np.zeros(A + 1, bool)
        self.is_ride[:R] = True
        self.att_tile_x = np.append(self.att_tile, self.exit)
        self.is_info = (self.att_sub == SPECIALTY) & (self.att_col == 1)
        self.is_spec_f = (self.att_sub == SPECIALTY).astype(float)
        # pass-by: for each tile, its neighbouring destinations (rides, shops, exit) in move order
        nb = np.full((NT, 4), -1, np.int64)
        dest_of_tile = self.tile_att.copy()
        dest_of_tile[self.exit] = A
        for t in range(NT):
            if kind[t] != PATH:
                continue
            x, y = divmod(t, N)
            k = 0
            for dx, dy in MOVES:
                a, b = x + dx, y + dy
                if 0 <= a < N and 0 <= b < N and dest_of_tile[a * N + b] >= 0:
                    nb[t, k] = dest_of_tile[a * N + b]
                    k += 1
        self.passby = nb
        self.pass_chance = np.where(self.att_sub == SPECIALTY, self.rules["pass_by_specialty"],
                                    self.rules["pass_by_shop"])
        # ride and shop runtime
        self.queue = [deque() for _ in range(R)]
        self.boarded: list[list[int]] = [[] for _ in range(R)]
        self.phase = [0] * R            # 0 waiting, 1 running, 2 disembarking
        self.countdown = [-1] * R
        self.oos = np.zeros(A + 1, bool)
        for i, r in enumerate(self.rides):
            self.oos[i] = bool(r["out_of_service"])
        self.shop_oos = self.oos  # shops share the array (index R..)
        self.inventory = np.zeros(A + 1, np.int64)
        self.day_survey = int(state["hidden"].get("survey_pending", 0))
        self._atm_prev: dict = {}

    # -- guests -------------------------------------------------------------------
    def _alloc(self, n: int) -> None:
        self.n = 0
        f = lambda v=0.0: np.full(n, v, float)  # noqa: E731
        i = lambda v=0: np.full(n, v, np.int64)  # noqa: E731
        self.pos, self.tgt, self.prev, self.nxt = i(self.entrance), i(-1), i(-1), i(-1)
        self.hap, self.hun, self.thi, self.energy = f(), f(), f(), f()
        self.money_g, self.start_money, self.spent = f(), f(), f()
        self.waiting = np.zeros(n, bool)
        self.ride_of = i(-1)
        self.exited = np.zeros(n, bool)
        self.hard = np.zeros(n, bool)
        self.reason = i(0)
        self.caff, self.n_caff, self.souv, self.atm = f(), f(), f(), f()
        self.info = np.zeros(n, bool)
        self.status_info = np.zeros(n, bool)
        self.steps = i()
        self.rides_v, self.food_v, self.drink_v, self.spec_v = i(), i(), i(), i()
        self.visits = np.full((n, 25), np.nan)
        self.info_any = False

    def _add_guests(self, k: int) -> None:
        a, b = self.n, self.n + k
        if b > len(self.pos):
            self._grow(b)
        rng, r = self.rng, self.rules
        m = rng.normal(r["guest_money"][0], r["guest_money"][1], k)
        self.start_money[a:b] = m
        self.money_g[a:b] = m
        self.hap[a:b] = np.clip(rng.normal(*r["guest_happiness"], k), 0, 1)
        self.hun[a:b] = np.clip(rng.normal(*r["guest_hunger"], k), 0, 1)
        self.thi[a:b] = np.clip(rng.normal(*r["guest_thirst"], k), 0, 1)
        self.energy[a:b] = np.floor(rng.normal(*r["guest_energy"], k))
        self.n = b
        self.inside += k

    def _grow(self, need: int) -> None:
        new = max(need, 2 * len(self.pos))
        for name in ("pos", "tgt", "prev", "nxt", "hap", "hun", "thi", "energy", "money_g", "start_money", "spent",
                     "waiting", "ride_of", "exited", "hard", "reason", "caff", "n_caff", "souv", "atm", "info",
                     "status_info", "steps", "rides_v", "food_v", "drink_v", "spec_v"):
            old = getattr(self, name)
            fill = {"pos": self.entrance, "tgt": -1, "prev": -1, "nxt": -1, "ride_of": -1}.get(name, 0)
            arr = np.full(new, fill, old.dtype)
            arr[:len(old)] = old
            setattr(self, name, arr)
        v = np.full((new, 25), np.nan)
        v[:len(self.visits)] = self.visits
        self.visits = v

    # -- the day --------------------------------------------------------------------
    def run(self) -> dict:
        s, p, rules, rng = self.s, self.p, self.rules, self.rng
        rating, exc = park_rating(s, p, self.clean)
        self.rating = rating
        self._stock_shops()
        for r in self.rides:
            r.update(revenue_generated=0, operating_cost=0, guests_entertained=0, times_operated=0,
                     total_guests_queued=0, unnorm_uptime=0.0, total_wait_time=0)
        for st in s["staff"]["staff_list"]:
            st["success_metric_value"], st["operating_cost"] = 0.0, 0
        cap = sum(r["capacity"] for r in self.rides)
        max_inside = math.floor(cap * rules["park_capacity_factor"])
        per_arrival = cap // 100 + 1
        gap = 5 - (cap >= 10) - (cap >= 24) - (cap >= 42) - (cap >= 66)
        value_assets = asset_value(s, p)
        self._alloc(max(16, (TICKS_PER_DAY // gap + 1) * per_arrival if cap else 16))
        self.inside = 0
        self.ride_uptime = np.zeros(self.R)
        self.wait_time = np.zeros(self.R)
        self.queued = np.zeros(self.R, np.int64)
        self.entertained = np.zeros(self.R, np.int64)
        self.operated = np.zeros(self.R, np.int64)
        self.ride_cost = np.zeros(self.R, np.int64)
        self.ride_rev = np.zeros(self.R, np.int64)
        self.staff = s["staff"]["staff_list"]
        for tick in range(TICKS_PER_DAY):
            if cap and self.inside < max_inside and tick % gap == 0 and rng.random() < rating / 100:
                self._add_guests(per_arrival)
            if self.n:
                self._guests_tick()
            self._rides_tick()
            self._staff_tick(tick)
        self._closing()
        self._pay_staff()
        return self._write_back(rating, exc, value_assets)

    def _stock_shops(self) -> None:
        shops, R = self.shops, self.R
        if not shops:
            return
        budget = self.money / len(shops)
        fixed = self.p.shop_costs == "fixed"
        for j, sh in enumerate(shops):
            sh.update(revenue_generated=0, guests_served=0, operating_cost=0, number_of_restocks=0,
                      services_attempted=0)
            q = int(sh["order_quantity"])
            if fixed:
                inv = max(q, 0)
                cost = int(self.p.shops[sh["subtype"]][sh["subclass"]]["operating_cost"]) if inv > 0 else 0
            else:
                c = int(sh["item_cost"])
                inv = q if (c * q <= budget or c == 0) else min(int(budget // c), q)
                cost = inv * c
            sh["inventory"] = inv
            sh["operating_cost"] = cost
            self.oos[R + j] = inv <= 0
            self.inventory[R + j] = inv
            self.money -= cost
            self.expenses += cost

    # -- guests: one tick ------------------------------------------------------------
    def _guests_tick(self) -> None:
        """One tick for every guest in the park, in the game's order: act, needs, litter."""
        rules, rng, A = self.rules, self.rng, self.A
        L = _nz(~self.exited[:self.n])
        if not len(L):
            return
        self.steps[L] += 1
        hard_t, soft_t = rules["hard_threshold"], rules["soft_threshold"]
        wt = self.waiting[L]
        act = L
        if np.count_nonzero(wt):
            W = L[wt]
            q = (self.thi[W] > hard_t) | (self.hun[W] > hard_t)
            if np.count_nonzero(q):
                for g in W[q].tolist():      # too hungry or thirsty to keep waiting
                    r = self.ride_of[g]
                    self.hap[g] = max(0.0, self.hap[g] - rules["rejection_penalty"])
                    self.waiting[g] = False
                    if g in self.queue[r]:
                        self.queue[r].remove(g)
                    if g in self.boarded[r]:
                        self.boarded[r].remove(g)
                    self.ride_of[g] = -1
            S = W[~q]
            if len(S):
                np.add.at(self.wait_time, self.ride_of[S], 1)
                self.energy[S] = np.maximum(0, self.energy[S] - rules["wait_energy"])
            keep = ~wt
            keep[_nz(wt)[q]] = True
            act = L[keep]
        if len(act):
            going = self.tgt[act] == A
            if np.count_nonzero(going):
                G = act[going]
                at = self.pos[G] == self.exit
                if np.count_nonzero(at):
                    self.exited[G[at]] = True
                    self.inside -= int(np.count_nonzero(at))
                mv = G[~at]
                self.pos[mv] = self.rt.step[self.pos[mv], self.exit]
                act = act[~going]
            if len(act):
                self._decide_and_move(act)
        # needs (not for guests heading out) and litter, for everyone who was in the park this tick
        tgL = self.tgt[L]
        nd = L[tgL != A]
        if len(nd):
            dec = rules["happiness_decay"]
            mult = np.where(self.waiting[nd], rules["wait_need_factor"], 1.0)
            hu = np.minimum(1, self.hun[nd] + rules["hunger_rate"] * mult)
            ha = self.hap[nd]
            ha = np.where(hu > soft_t, np.maximum(0, ha - hu * dec), ha)
            th = np.minimum(1, self.thi[nd] + rules["thirst_rate"] * mult)
            ha = np.where(th > soft_t, np.maximum(0, ha - th * dec), ha)
            ha = np.maximum(0, ha - dec * mult / 5)
            c = self.clean[self.pos[nd]]
            ha = np.maximum(0, ha - rules["dirty_tile_decay"] * ((c < 0.8).astype(float) + (c < 0.6) + (c < 0.4)))
            self.hun[nd], self.thi[nd], self.hap[nd] = hu, th, ha
        chance = np.minimum(np.maximum((1 - self.hap[L]) / 2, rules["litter_low"]), rules["litter_high"])
        chance[tgL == A] *= rules["litter_exit_factor"]
        drop = rng.random(len(L)) < chance
        if np.count_nonzero(drop):
            np.subtract.at(self.clean, self.pos[L[drop]], rules["litter_amount"])
            np.maximum(self.clean, 0, out=self.clean)

    def _decide_and_move(self, O: np.ndarray) -> None:
        """Guests ``O`` (indices, arrival order) who are not waiting and not heading out."""
        rules, rng, A = self.rules, self.rng, self.A
        none = R_CODE["No specific reason for exit"]
        hard_t = rules["hard_threshold"]
        hu, th, ha = self.hun[O], self.thi[O], self.hap[O]
        tg = self.tgt[O]
        # leaving for a need (first reason that applies)
        left = np.zeros(len(O), bool)
        for cond, why in ((ha == 0, "Too unhappy"), (self.energy[O] <= 0, "Ran out of energy"),
                          (self.money_g[O] <= 1, "Spent all their money"), (th >= 1, "Too thirsty"),
                          (hu >= 1, "Too hungry")):
            m = ~left & cond
            if np.count_nonzero(m):
                tg[m] = A
                self.reason[O[m]] = R_CODE[why]
                left |= m
        if np.count_nonzero(left):
            self.tgt[O[left]] = A
        tsub = self.att_sub[tg]          # index -1 (no target) reads the exit's entry, -1
        choose = ~left & ((tg < 0) | ((hu > hard_t) & (hu > th) & (tsub != FOOD))
                          | ((th > hard_t) & (th > hu) & (tsub != DRINK)))
        M = O
        if np.count_nonzero(choose):
            stopped = self._choose(O[choose])
            if len(stopped):
                M = O[~np.isin(O, stopped)]
        if not len(M):
            return
        tg = self.tgt[M]
        pos = self.pos[M]
        at = (tg >= 0) & (pos == self.att_tile_x[tg])
        if np.count_nonzero(at):
            AT = M[at]
            self._interact(AT)
            done = AT[~self.exited[AT]]
            self.prev[done] = self.tgt[done]
            self.tgt[done] = -1
            self.nxt[done] = -1
            if self._atm_prev:
                # a billboard pointed the guest at an ATM: the game then remembers the ATM as the last visit
                for g, atm in self._atm_prev.items():
                    self.prev[g] = atm
                self._atm_prev = {}
            M = M[~at]
            if not len(M):
                return
            pos = self.pos[M]
        self.energy[M] = np.maximum(0, self.energy[M] - 1)
        # passing by: a chance to step into a neighbouring attraction instead
        pb = (self.kind[pos] == PATH) & ~self.hard[M]
        if np.count_nonzero(pb) and A:
            idx = M[pb]
            cand = self.passby[self.pos[idx]]                        # (k, 4) destinations or -1
            valid = cand >= 0
            cand0 = np.maximum(cand, 0)
            cand_tile = self.att_tile_x[cand0]
            prv, cur = self.prev[idx], self.tgt[idx]
            prv_tile = np.where(prv >= 0, self.att_tile_x[prv], -2)
            cur_tile = np.where(cur >= 0, self.att_tile_x[cur], -2)
            valid &= (cand_tile != prv_tile[:, None]) & (cand_tile != cur_tile[:, None])
            if self.info_any:
                valid &= ~(self.is_info[cand0] & self.info[idx][:, None])
            cum = np.cumsum(np.where(valid, self.pass_chance[cand0], 0.0), axis=1)
            hit = valid & (rng.random(len(idx))[:, None] <= cum)
            took = hit.any(axis=1)
            if np.count_nonzero(took):
                g = idx[took]
                new = cand[took, np.argmax(hit[took], axis=1)]
                self.prev[g] = -1
                self.nxt[g] = self.tgt[g]
                self.tgt[g] = new
                we = g[(new == A) & (self.reason[g] == none)]
                self.reason[we] = R_CODE["Walked by the exit"]
        dest = self.att_tile_x[self.tgt[M]]
        newpos = self.rt.step[pos, dest].astype(np.int64)
        self.pos[M] = newpos
        caf = self.caff[M] > 0
        if np.count_nonzero(caf):
            g = M[caf]
            d = dest[caf]
            p2 = newpos[caf]
            again = (p2 // N != d // N) & (p2 % N != d % N)   # the game moves twice only when both coordinates differ
            g, d = g[again], d[again]
            if len(g):
                self.energy[g] = np.maximum(0, self.energy[g] - 1)
                self.pos[g] = self.rt.step[self.pos[g], d]
                self.caff[g] -= 1

    def _choose(self, idx: np.ndarray) -> np.ndarray:
        """Pick new targets for guests ``idx``; returns the guests who stop this tick (no shop of the
        kind they need: they turn for the exit and stand still this tick)."""
        n, rules, rng, A, R = self.n, self.rules, self.rng, self.A, self.R
        hun, thi, hap = self.hun[idx], self.thi[idx], self.hap[idx]
        hard_t, soft_t = rules["hard_threshold"], rules["soft_threshold"]
        self.hard[idx] = (hun > hard_t) | (thi > hard_t)
        k = len(idx)
        sub = self.att_sub[:A]
        is_food, is_drink, is_ride = sub == FOOD, sub == DRINK, self.is_ride[:A]
        cat = np.full(k, 4)   # 0 drink, 1 food, 2 rides, 3 next target, 4 everything
        c_drink = (thi > soft_t) & (thi > hun)
        c_food = ~c_drink & (hun > soft_t)
        c_ride = ~c_drink & ~c_food & (hap < 1 - soft_t)
        nxt = self.nxt[idx]
        c_next = ~c_drink & ~c_food & ~c_ride & (nxt >= 0)
        cat[c_drink], cat[c_food], cat[c_ride], cat[c_next] = 0, 1, 2, 3
        M = np.zeros((k, A), bool)
        M[cat == 0] = is_drink
        M[cat == 1] = is_food
        M[cat == 2] = is_ride
        M[cat == 4] = is_ride | is_food | is_drink
        prev = self.prev[idx]
        rows = _nz((prev >= 0) & (prev < A))
        M[rows, prev[rows]] = False
        rows = _nz(cat == 3)
        if len(rows):
            M[rows, :] = False
            ok = nxt[rows] < A
            M[rows[ok], nxt[rows][ok]] = True
        stop = np.zeros(0, np.int64)
        empty = (~M.any(axis=1)) & (cat <= 2)
        if np.count_nonzero(empty):
            g = idx[empty]
            self.tgt[g] = A
            why = np.array([R_CODE["Too few drink shops"], R_CODE["Too few food shops"], R_CODE["Too few rides"]])
            self.reason[g] = why[cat[empty]]
            stop = g
        live = ~empty
        pos = self.pos[idx]
        tiles = self.att_tile
        if A:
            info = self.info[idx]
            if np.count_nonzero(info):
                M[info] &= self.money_g[idx][info][:, None] >= self.att_price[:A][None, :]
            st = self.status_info[idx]
            if np.count_nonzero(st):
                M[st] &= (~self.oos[:A] & (self.clean[tiles] > 0.4))[None, :]
            d = self.rt.dist[pos[:, None], tiles[None, :]].astype(float)   # (k, A)
            M &= d >= 0
            v = np.fmax(self.visits[idx[:, None], self.att_key[:A][None, :]], 0.0)   # unknown counts as 0
            factor = self.ride_w[:A] + self.is_spec_f[:A]
            factor = factor + np.outer(10 * hun, is_food) + np.outer(10 * thi, is_drink)
            wgt = 4.0 * factor / np.exp2(v)
            if np.count_nonzero(st):
                qlen = np.array([len(q) + len(b) for q, b in zip(self.queue, self.boarded)] + [0] * (A - R), float)
                capn = np.array([r["capacity"] for r in self.rides] + [1] * (A - R), float)
                busy = np.where(is_ride, 1 / np.maximum(1, qlen / capn), 1.0)
                wgt[st] *= (busy * self.clean[tiles] * np.where(self.oos[:A], 0.001, 1.0))[None, :]
        else:
            d = np.zeros((k, 0))
            wgt = np.zeros((k, 0))
        n_t = M.sum(axis=1)
        ew = (n_t + 1) - 0.99
        ew = ew * np.where(self.info[idx], 0.5, 1.0) * np.where(self.status_info[idx], 0.5, 1.0)
        scale = (thi + hun + (1 - hap)) * np.where(self.hard[idx], 2.0, 1.0)
        scale = np.clip(scale * np.where(self.caff[idx] > 0, 0.5, 1.0), 0.5, 2.0)
        if A:
            same = pos[:, None] == tiles[None, :]
            dd = np.where(same, 1.0, np.maximum(d, 2.0))
            w_att = np.where(M, wgt / np.power(dd, scale[:, None]), 0.0)
        else:
            w_att = np.zeros((k, 0))
        w_exit = ew / np.power(np.where(pos == self.exit, 1.0, float(rules["exit_distance"])), scale)
        W = np.concatenate([w_att, w_exit[:, None]], axis=1)
        cum = np.cumsum(W, axis=1)
        u = rng.random(k) * cum[:, -1]
        pick = np.argmax(u[:, None] < cum, axis=1)
        g = idx[live]
        self.tgt[g] = pick[live]
        self.nxt[g] = -1
        chose_exit = live & (pick == A)
        none = R_CODE["No specific reason for exit"]
        names = np.array([_TARGET_TYPE_REASON["drink shops"], _TARGET_TYPE_REASON["food shops"],
                          _TARGET_TYPE_REASON["rides"], _TARGET_TYPE_REASON["attractions"],
                          _TARGET_TYPE_REASON["attractions"]])
        ge = idx[chose_exit]
        set_reason = self.reason[ge] == none
        self.reason[ge[set_reason]] = names[cat[chose_exit]][set_reason]
        return stop

    def _interact(self, idx: np.ndarray) -> None:
        """Guests ``idx`` (in arrival order) reached their target."""
        rules, rng, A, R = self.rules, self.rng, self.A, self.R
        tgt = self.tgt[idx]
        ex = tgt == A
        if np.count_nonzero(ex):
            self.exited[idx[ex]] = True
            self.inside -= int(ex.sum())
        pen = rules["rejection_penalty"]
        rides = idx[(tgt < R)]
        if len(rides):
            a = self.tgt[rides]
            refuse = self.oos[a] | (self.money_g[rides] < self.att_price[a]) | (rng.random(len(rides)) >
                                                                                 self.clean[self.att_tile[a]])
            g = rides[refuse]
            self.hap[g] = np.maximum(0, self.hap[g] - pen)
            key = self.att_key[a[refuse]]
            self.visits[g, key] += 4
            ok = rides[~refuse]
            ak = a[~refuse]
            self.waiting[ok] = True
            self.ride_of[ok] = ak
            for g1, r in zip(ok.tolist(), ak.tolist()):
                self.queue[r].append(g1)
                self.queued[r] += 1
            key = self.att_key[ak]
            self.visits[ok, key] = np.fmax(self.visits[ok, key], 0.0) + 1
        shops = idx[(tgt >= R) & (tgt < A)]
        for g in shops.tolist():
            self._shop(g, int(self.tgt[g]))

    def _shop(self, g: int, a: int) -> None:
        rules, R = self.rules, self.R
        j = a - R
        sh = self.shops[j]
        key = self.att_key[a]
        if self.oos[a]:
            sh["services_attempted"] += 1
            self.hap[g] = max(0.0, self.hap[g] - rules["rejection_penalty"])
            self.visits[g, key] = max(self.visits[g, key] * 2, 2) if not np.isnan(self.visits[g, key]) else np.nan
            return
        price = self.att_price[a]
        if self.money_g[g] < price or self.rng.random() > self.clean[self.att_tile[a]]:
            self.hap[g] = max(0.0, self.hap[g] - rules["rejection_penalty"])
            self.visits[g, key] = max(self.visits[g, key] * 2, 2) if not np.isnan(self.visits[g, key]) else np.nan
            return
        self.money_g[g] -= price
        self.spent[g] += price
        self.money += int(price)
        self.revenue += int(price)
        sh["revenue_generated"] += int(price)
        sh["guests_served"] += 1
        sh["services_attempted"] += 1
        self.inventory[a] -= 1
        if self.inventory[a] <= 0:
            self.oos[a] = True
        t = self.p.shops[sh["subtype"]][sh["subclass"]]
        sub, col = sh["subtype"], sh["subclass"]
        if sub == "food":
            self.food_v[g] += 1
            self.hun[g] = max(0.0, self.hun[g] - t.get("hunger_reduction", 0))
            if "thirst_reduction" in t:
                self.thi[g] = max(0.0, self.thi[g] - t["thirst_reduction"])
            if "happiness_boost" in t:
                self.hap[g] = min(1.0, self.hap[g] + t["happiness_boost"])
        elif sub == "drink":
            self.drink_v[g] += 1
            self.thi[g] = max(0.0, self.thi[g] - t.get("thirst_reduction", 0))
            if "happiness_boost" in t:
                self.hap[g] = min(1.0, self.hap[g] + t["happiness_boost"])
            if "energy_boost" in t:
                self.energy[g] += t["energy_boost"]
                self.caff[g] = t["caffeinated_steps"] / 2 ** self.n_caff[g]
                self.n_caff[g] += 1
        else:
            self.spec_v[g] += 1
            if col == "yellow":
                self.hap[g] = min(1.0, self.hap[g] + t["happiness_boost"] * 2 ** (-self.souv[g]))
                self.souv[g] += 1
            elif col == "blue":
                self.info[g] = True
                self.info_any = True
            elif col == "green":
                w = max(t["min_withdrawal"], round(t["money_withdrawal"] / 2 ** self.atm[g]))
                self.money_g[g] += w
                self.atm[g] += 1
            else:
                soft = rules["soft_threshold"]
                self.thi[g] = min(soft, self.thi[g] + t.get("thirst_boost", 0))
                self.hun[g] = min(soft, self.hun[g] + t.get("hunger_boost", 0))
                self.hap[g] = min(1.0, self.hap[g] + t.get("happiness_boost", 0))
                self.visits[g, 12:24] = 0.0
                if self.money_g[g] < t.get("money_threshold", 0):
                    atms = [self.R + i for i, s in enumerate(self.shops)
                            if s["subtype"] == "specialty" and s["subclass"] == "green"]
                    if atms:
                        d = np.array([1.0 if self.pos[g] == self.att_tile[x] else
                                      max(float(self.rt.dist[self.pos[g], self.att_tile[x]]), 2.0) for x in atms])
                        w = 1.0 / d
                        pick = atms[int(np.searchsorted(np.cumsum(w), self.rng.random() * w.sum(), side="right"))
                                    if len(atms) > 1 else 0]
                        self._atm_prev[g] = pick
        v = self.visits[g, key]
        self.visits[g, key] = (0.0 if np.isnan(v) else v) + 1

    # -- rides ----------------------------------------------------------------------
    def _rides_tick(self) -> None:
        for i, r in enumerate(self.rides):
            if self.oos[i]:
                continue
            self.ride_uptime[i] += 1
            ph = self.phase[i]
            if ph == 0:
                q, b = self.queue[i], self.boarded[i]
                k = min(r["capacity"] - len(b), len(q))
                if k > 0:
                    price = r["ticket_price"]
                    for _ in range(k):
                        g = q.popleft()
                        self.money_g[g] -= price
                        self.spent[g] += price
                        self.rides_v[g] += 1
                        b.append(g)
                    self.money += price * k
                    self.revenue += price * k
                    self.ride_rev[i] += price * k
                if b and self.countdown[i] <= -1:
                    self.countdown[i] = round(r["capacity"] * 2)
                self.countdown[i] -= len(b)
                if self.countdown[i] <= 0 and b:
                    self.phase[i] = 1
            elif ph == 1:
                cost = r["cost_per_operation"]
                if self.money < cost:
                    continue
                self.operated[i] += 1
                self.money -= cost
                self.expenses += cost
                self.ride_cost[i] += cost
                if self.s["step"] >= self.rules["breakdown_free_days"] and self.rng.random() < r["breakdown_rate"]:
                    self.oos[i] = True
                    r["remaining_repair_time"] = int(round(
                        self.p.rides[r["subtype"]][r["subclass"]]["building_cost"] * self.rules["repair_work_share"]))
                    gs = list(self.queue[i]) + self.boarded[i]
                    if gs:
                        self.waiting[gs] = False
                        self.ride_of[gs] = -1
                    self.queue[i].clear()
                    self.boarded[i] = []
                    self.phase[i] = 0
                    self.countdown[i] = -1
                else:
                    self.phase[i] = 2
            else:
                b = self.boarded[i]
                if b:
                    self.hap[b] = np.minimum(1.0, self.hap[b] + r["excitement"] / 20)
                    self.waiting[b] = False
                    self.ride_of[b] = -1
                    self.entertained[i] += len(b)
                self.boarded[i] = []
                self.countdown[i] = -1
                self.phase[i] = 0

    # -- staff ----------------------------------------------------------------------
    def _pick(self, here: int, tiles: np.ndarray, weights: np.ndarray) -> int:
        """The game's distance-weighted choice for staff (scale 1); -1 when nothing can be picked."""
        if len(tiles) == 0:
            return -1
        d = np.where(tiles == here, 1.0, np.maximum(self.rt.dist[here, tiles].astype(float), 2.0))
        w = weights / d
        tot = w.sum()
        if not tot > 0:
            return -1
        cum = np.cumsum(w)
        return int(tiles[min(int(np.searchsorted(cum, self.rng.random() * tot, side="right")), len(tiles) - 1)])

    def _step_toward(self, st: dict, here: int, dest: int, steps: int) -> int:
        for _ in range(steps):
            if here == dest:
                break
            nxt = int(self.rt.step[here, dest])
            if nxt < 0:
                break
            here = nxt
            st["tiles_traversed"] += 1
        return here

    def _staff_tick(self, tick: int) -> None:
        for st in self.staff:
            sub, col = st["subtype"], st["subclass"]
            if sub == "janitor":
                self._janitor(st)
            elif sub == "mechanic":
                self._mechanic(st)
            elif col == "blue":
                self._stocker(st, tick)
            else:
                self._specialist(st)

    def _janitor(self, st: dict) -> None:
        t = self.p.staff["janitor"][st["subclass"]]
        thr, rate = t["cleaning_threshold"], t["clean_rate"]
        here = st["x"] * N + st["y"]
        if st.get("target") is None:
            if not hasattr(self, "_cleanable"):
                k = self.kind
                self._cleanable = _nz((k != EMPTY) & (k != WATER))
            tiles = self._cleanable
            c = self.clean[tiles]
            m = (c < thr) & ((self.rt.dist[here, tiles] >= 0) | (tiles == here))
            pick = self._pick(here, tiles[m], 1.0 / (c[m] + 0.001))
            st["target"] = None if pick < 0 else [pick // N, pick % N]
            if pick < 0:
                return
        tx, ty = st["target"]
        dest = tx * N + ty
        if here == dest:
            if self.money < 1:
                return
            self._clean_cost(st, rate)
            self.clean[dest] = min(1.2, self.clean[dest] + rate)
            if self.clean[dest] >= thr:
                st["target"] = None
            return
        if self.rng.random() < 0.1 and self.clean[here] < thr:
            if self.money < 1:
                return
            self._clean_cost(st, rate)
            self.clean[here] = min(1.0, self.clean[here] + rate)
            return
        new = self._step_toward(st, here, dest, t["steps"])
        st["x"], st["y"] = new // N, new % N

    def _clean_cost(self, st: dict, rate: float) -> None:
        st["success_metric_value"] += rate
        self.money -= 1
        self.expenses += 1
        st["operating_cost"] += 1

    def _mechanic(self, st: dict) -> None:
        mt = self.p.staff["mechanic"][st["subclass"]]
        rate = mt["repair_rate"]
        here = st["x"] * N + st["y"]
        tgt = st.get("target")
        ride_at = None
        if tgt is not None:
            a = self.tile_att[tgt[0] * N + tgt[1]]
            if a < 0 or a >= self.R:
                st["target"] = tgt = None
            else:
                ride_at = a
        if tgt is None:
            broken = [i for i in range(self.R) if self.oos[i]]
            tiles = np.array([self.att_tile[i] for i in broken], np.int64)
            if len(tiles):
                ok = (self.rt.dist[here, tiles] >= 0) | (tiles == here)
                tiles = tiles[ok]
            pick = self._pick(here, tiles, np.ones(len(tiles)))
            if pick < 0:
                return
            st["target"] = [pick // N, pick % N]
            ride_at = self.tile_att[pick]
        dest = self.att_tile[ride_at]
        r = self.rides[ride_at]
        if here == dest and self.money >= rate:
            if r["remaining_repair_time"] <= 0:
                r["remaining_repair_time"] = 0
                self.oos[ride_at] = False
                st["target"] = None
            else:
                r["remaining_repair_time"] -= rate
                self.money -= rate
                self.expenses += rate
                st["success_metric_value"] += rate
                st["operating_cost"] += rate
            return
        new = self._step_toward(st, here, dest, mt["steps"])
        st["x"], st["y"] = new // N, new % N

    def _specialist(self, st: dict) -> None:
        """Clown (yellow), park crier (green), vendor (red): walk to a busy ride and serve its line."""
        col = st["subclass"]
        here = st["x"] * N + st["y"]
        tgt = st.get("target")
        if tgt is None:
            ok = [i for i in range(self.R) if (self.rt.dist[here, self.att_tile[i]] >= 0 or self.att_tile[i] == here)
                  and (col != "yellow" or not self.oos[i])]
            # the game weighs the reachable rides with the queue lengths of all rides, in list order
            allw = np.array([len(self.queue[i]) + len(self.boarded[i]) + 0.1 for i in range(self.R)])
            tiles = np.array([self.att_tile[i] for i in ok], np.int64)
            pick = self._pick(here, tiles, allw[:len(tiles)])
            st["target"] = None if pick < 0 else [pick // N, pick % N]
            return
        dest = tgt[0] * N + tgt[1]
        a = self.tile_att[dest]
        if here == dest:
            if 0 <= a < self.R:
                gs = list(self.queue[a]) + self.boarded[a]
                t = self.p.staff["specialist"][col]
                for g in gs:
                    if col == "yellow":
                        self.hap[g] = min(1.0, self.hap[g] + t["happiness_boost"])
                    elif col == "green":
                        self.status_info[g] = True
                    else:
                        self.hun[g] = max(0.0, self.hun[g] - t["hunger_reduction"])
                        self.thi[g] = max(0.0, self.thi[g] - t["thirst_reduction"])
                st["success_metric_value"] += len(gs) + (1 if col == "red" else 0)
            st["target"] = None
            return
        new = self._step_toward(st, here, dest, {"yellow": 1, "green": 2, "red": 3}[col])
        st["x"], st["y"] = new // N, new % N

    def _stocker(self, st: dict, tick: int) -> None:
        t = self.p.staff["specialist"]["blue"]
        carried = st.get("carried_inventory", 0)
        if TICKS_PER_DAY - tick < t["idle_ticks"] and carried == 0:
            return
        here = st["x"] * N + st["y"]
        tgt = st.get("target")
        if tgt is None:
            cands = [j for j, s in enumerate(self.shops) if s["order_quantity"] > 0
                     and self.inventory[self.R + j] / s["order_quantity"] < t["restock_threshold"]
                     and (self.rt.dist[here, self.att_tile[self.R + j]] >= 0 or self.att_tile[self.R + j] == here)]
            if not cands:
                return
            tiles = np.array([self.att_tile[self.R + j] for j in cands], np.int64)
            w = np.array([self.shops[j]["order_quantity"] / (self.inventory[self.R + j] + 0.1) for j in cands])
            shop = self._pick(here, tiles, w)
            st["next_target"] = [shop // N, shop % N]
            de = max(float(self.rt.dist[here, self.exit]), 1.0)
            dn = max(float(self.rt.dist[here, self.entrance]), 1.0)
            gate = self._pick(here, np.array([self.exit, self.entrance]), np.array([1 / de, 1 / dn]))
            st["target"] = [gate // N, gate % N]
            return
        dest = tgt[0] * N + tgt[1]
        if here == dest:
            nt = st.get("next_target")
            if nt is None:
                a = self.tile_att[dest]
                if a >= self.R:
                    self.inventory[a] += carried
                    self.shops[a - self.R]["inventory"] = int(self.inventory[a])
                    if self.inventory[a] > 0:
                        self.oos[a] = False
                    self.shops[a - self.R]["number_of_restocks"] += 1
                st["success_metric_value"] += carried
                st["carried_inventory"] = 0
                st["target"] = None
            else:
                a = self.tile_att[nt[0] * N + nt[1]]
                if a >= self.R:
                    sh = self.shops[a - self.R]
                    q = sh["order_quantity"]
                    c = min(t["max_inventory"], q - int(self.inventory[a]), math.floor(q * t["stocking_rate"]))
                    if sh["item_cost"]:
                        c = min(self.money // sh["item_cost"], c)
                    c = max(int(c), 0)
                    self.money -= c * sh["item_cost"]
                    self.expenses += c * sh["item_cost"]
                    st["operating_cost"] += c * sh["item_cost"]
                    st["carried_inventory"] = c
                st["target"], st["next_target"] = nt, None
            return
        new = self._step_toward(st, here, dest, 2)
        st["x"], st["y"] = new // N, new % N

    # -- evening ---------------------------------------------------------------------
    def _closing(self) -> None:
        n = self.n
        if not n:
            return
        left = _nz(~self.exited[:n])
        self.waiting[left] = False
        for g in left.tolist():
            a = self.tile_att[self.pos[g]]
            if a >= self.R:   # a guest standing in a shop at closing is served once more
                self._shop(g, int(a))
        self.reason[left] = R_CODE["Day ended"]
        self.exited[:n] = True

    def _pay_staff(self) -> None:
        paid = 0
        staff = self.staff
        for st in list(staff):
            sal = int(self.p.staff[st["subtype"]][st["subclass"]]["salary"])
            if sal > self.money and not self.p.bankruptcy:
                # the game dismisses the first staff member of that kind on that tile
                key = (st["subtype"], st["subclass"], st["x"], st["y"])
                for j, o in enumerate(staff):
                    if (o["subtype"], o["subclass"], o["x"], o["y"]) == key:
                        del staff[j]
                        break
                continue
            self.money -= sal
            paid += sal
            self.expenses += sal
        self.salaries = paid

    def _write_back(self, rating: float, exc: float, assets: float) -> dict:
        s, p, n = self.s, self.p, self.n
        # rides
        for i, r in enumerate(self.rides):
            r["out_of_service"] = bool(self.oos[i])
            r["unnorm_uptime"] = float(self.ride_uptime[i])
            r["uptime"] = round(self.ride_uptime[i] / TICKS_PER_DAY * 100) / 100
            r["operating_cost"] = int(self.ride_cost[i])
            r["revenue_generated"] = int(self.ride_rev[i])
            r["guests_entertained"] = int(self.entertained[i])
            r["times_operated"] = int(self.operated[i])
            r["total_guests_queued"] = int(self.queued[i])
            r["total_wait_time"] = int(self.wait_time[i])
            r["avg_wait_time"] = round((self.wait_time[i] / self.queued[i] if self.queued[i] else 0) * 100) / 100
            r["avg_guests_per_operation"] = round((self.entertained[i] / self.operated[i]
                                                   if self.operated[i] else 0) * 100) / 100
        for j, sh in enumerate(self.shops):
            a = self.R + j
            sh["inventory"] = int(self.inventory[a])
            sh["out_of_service"] = bool(self.oos[a])
            sh["uptime"] = _shop_uptime(sh)
        # tiles
        grid = self.clean.reshape(N, N)
        s["hidden"]["cleanliness"] = [[round(float(v), 4) for v in row] for row in grid]
        for a in self.rides + self.shops:
            a["cleanliness"] = r2(grid[a["x"], a["y"]])
        for t in s["paths"]:
            t["cleanliness"] = r2(grid[t["x"], t["y"]])
        # guests
        full = _nz(self.reason[:n] != R_CODE["Day ended"])
        stats = {"total_guests": int(n), "avg_money_spent": 0.0, "avg_time_in_park": 0.0, "avg_rides_visited": 0.0,
                 "avg_food_shops_visited": 0.0, "avg_drink_shops_visited": 0.0,
                 "avg_specialty_shops_visited": 0.0}
        if len(full):
            for key, arr in (("avg_money_spent", self.spent), ("avg_time_in_park", self.steps),
                             ("avg_rides_visited", self.rides_v), ("avg_food_shops_visited", self.food_v),
                             ("avg_drink_shops_visited", self.drink_v),
                             ("avg_specialty_shops_visited", self.spec_v)):
                stats[key] = round(float(np.mean(arr[full])) * 100) / 100
        s["guests"] = stats
        if n:
            s["hidden"]["prev_guest_happiness"] = float(np.mean(self.hap[:n]))
        # survey
        res = s["guest_survey_results"]
        if self.day_survey > 0:
            pool = full
            pick = pool if len(pool) <= self.day_survey else self.rng.choice(pool, self.day_survey, replace=False)
            res["list_of_results"] = [{
                "happiness_at_exit": r2(self.hap[g]), "hunger_at_exit": r2(self.hun[g]),
                "thirst_at_exit": r2(self.thi[g]), "remaining_energy": r2(self.energy[g]),
                "remaining_money": r2(self.money_g[g]),
                "percent_of_money_spent": r2(self.spent[g] / self.start_money[g] if self.start_money[g] else 0),
                "reason_for_exit": EXIT_REASONS[int(self.reason[g])], "preference": "no preferences"}
                for g in np.sort(pick)]
            res["age_of_results"] = 0
        else:
            res["age_of_results"] = int(res.get("age_of_results", 0)) + 1
        s["hidden"]["survey_pending"] = 0
        # staff order as the game keeps it
        order = {"janitor": 0, "mechanic": 1, "specialist": 2}
        s["staff"]["staff_list"] = sorted(self.staff, key=lambda st: (order[st["subtype"]], st["x"], st["y"]))
        s["staff"]["total_salary_paid"] = int(self.salaries)
        # money and the day's totals
        s["step"] = int(s["step"]) + 1
        s["money"] = int(self.money)
        s["revenue"], s["expenses"] = int(self.revenue), int(self.expenses)
        s["profit"] = s["revenue"] - s["expenses"]
        s["park_rating"] = round(rating, 2)
        s["value"] = int(round(assets + self.money))
        s["hidden"]["parse_error"] = False
        s["hidden"]["action_cost"] = 0
        s["hidden"]["action_refund"] = 0
        refresh(s, p, excitement=exc)
        if p.bankruptcy and s["money"] < 0:
            s["bankrupt"] = True
        s["game_over"] = bool(s["bankrupt"] or s["step"] >= s["horizon"])
        return s


def simulate_day(state: dict, rng: np.random.Generator, params: str | Params | None = None) -> dict:
    """Run one day from ``state`` (the action already applied); returns a new state."""
    s = copy_park_state(state)
    p = get_params(params if params is not None else s["hidden"]["parameters"])
    return _Day(s, p, rng).run()


def transition(state: dict, action: Any, rng: np.random.Generator) -> tuple[dict, bool, dict]:
    """One step from any state: apply the morning ``action`` (if valid), run the day.

    Returns ``(next_state, valid, info)``; ``info`` has ``error``, ``reason``, ``message`` and
    ``done``.  A finished game refuses every action and stays as it is.
    """
    if state.get("game_over"):
        return copy_park_state(state), False, {"error": "The game has ended", "reason": "game_over",
                                               "message": "The game has ended", "done": True}
    after, valid, error, info = apply_action(state, action)
    p = get_params(after["hidden"]["parameters"])
    after["hidden"]["action_cost"] = info["cost"]
    after["hidden"]["action_refund"] = info["refund"]
    after["hidden"]["parse_error"] = bool(info["parse_error"]) and p.name == "game"
    nxt = _Day(after, p, rng).run()
    out = {"error": error, "reason": info["reason"], "message": info["message"], "done": bool(nxt["game_over"]),
           "action": info["action"]}
    return nxt, valid, out


__all__ = ["simulate_day", "transition", "park_rating", "routes_for", "Routes"]
