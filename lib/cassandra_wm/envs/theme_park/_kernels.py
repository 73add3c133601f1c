"""The theme park's 500 ticks compiled with numba: the numpy engine's rules, guest by guest.

:func:`play_day` runs the ticks and the closing of a :class:`sim._Day` that is set up for the
day (rating, stock, counters), and leaves everything where the numpy engine would: the guest
arrays, the day's money, revenue and expenses, the ride counters and the ride, shop and staff
fields.  ``sim`` then pays salaries and writes the state back, the same code for both engines.

Same seed, same day: the kernel draws from the same ``numpy.random.Generator`` (numba shares its
state) in the same order as the numpy engine, which draws per phase of a tick (all choosing guests,
then the ride-goers, then each shop customer, then the passers-by, then the litter), and it does the
same floating-point operations in the same order (sums as numpy's pairwise sum, cumulative sums in
sequence).  Tests check that both engines return identical states.

Importing this module imports numba (an ImportError if it is missing: ``sim`` falls back to the
numpy engine).  Compiled code is cached on disk (``cache=True``), so only the first day after an
install or an edit of this file pays the compilation.
"""
from __future__ import annotations

import math

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")

N = 20
TICKS = 500
EMPTY, PATH, WATER = 0, 1, 2           # tile kinds used here (as sim.py)
FOOD, DRINK, SPECIALTY = 0, 1, 2       # shop subtypes (as sim.py)
YELLOW, BLUE, GREEN, RED = 0, 1, 2, 3  # colours (params.COLOURS order)

# guest arrays: rows of three matrices (floats, ints, flags)
HAP, HUN, THI, ENERGY, MONEY, START_MONEY, SPENT, CAFF, NCAFF, SOUV, ATM = range(11)
G_FLOAT = ("hap", "hun", "thi", "energy", "money_g", "start_money", "spent", "caff", "n_caff", "souv", "atm")
POS, TGT, PREV, NXT, RIDE_OF, REASON, STEPS, RIDES_V, FOOD_V, DRINK_V, SPEC_V = range(11)
G_INT = ("pos", "tgt", "prev", "nxt", "ride_of", "reason", "steps", "rides_v", "food_v", "drink_v", "spec_v")
WAITING, EXITED, HARD, INFO, STATUS_INFO = range(5)
G_FLAG = ("waiting", "exited", "hard", "info", "status_info")
# rides: ints and floats
R_CAP, R_PRICE, R_COST, R_REPAIR_WORK, R_REMAINING, R_PHASE, R_COUNTDOWN = range(7)
R_BREAK, R_EXC = range(2)
# shops: ints and effects
S_SUB, S_COL, S_ORDER, S_ITEM_COST, S_ATTEMPTED, S_SERVED, S_REV, S_RESTOCKS = range(8)
(E_HUNGER_RED, E_THIRST_RED, E_HAPPY, E_ENERGY, E_CAFF_STEPS, E_HAS_ENERGY, E_WITHDRAW, E_MIN_WITHDRAW,
 E_THIRST_BOOST, E_HUNGER_BOOST, E_MONEY_THRESHOLD) = range(11)
SHOP_EFFECTS = ("hunger_reduction", "thirst_reduction", "happiness_boost", "energy_boost", "caffeinated_steps",
                None, "money_withdrawal", "min_withdrawal", "thirst_boost", "hunger_boost", "money_threshold")
# staff: kinds, ints, floats
K_JANITOR, K_MECHANIC, K_CLOWN, K_CRIER, K_VENDOR, K_STOCKER = range(6)
T_KIND, T_POS, T_TGT, T_NEXT, T_CARRIED, T_COST, T_TILES, T_STEPS, T_RATE, T_TOUCHED = range(10)
F_METRIC, F_P0, F_P1, F_P2, F_P3 = range(5)
# rules (floats)
(U_HARD, U_SOFT, U_PEN, U_WAIT_E, U_DECAY, U_WAIT_F, U_HUNGER_RATE, U_THIRST_RATE, U_DIRTY, U_LIT_LOW, U_LIT_HIGH,
 U_LIT_EXIT, U_LIT_AMOUNT, U_EXIT_DIST, U_RATING, U_MONEY_MU, U_MONEY_SD, U_HAP_MU, U_HAP_SD, U_HUN_MU, U_HUN_SD,
 U_THI_MU, U_THI_SD, U_EN_MU, U_EN_SD) = range(25)
RULE_KEYS = ("hard_threshold", "soft_threshold", "rejection_penalty", "wait_energy", "happiness_decay",
             "wait_need_factor", "hunger_rate", "thirst_rate", "dirty_tile_decay", "litter_low", "litter_high",
             "litter_exit_factor", "litter_amount", "exit_distance")
# day scalars (ints)
(D_MONEY, D_REVENUE, D_EXPENSES, D_N, D_INSIDE, D_CAP, D_MAX_INSIDE, D_PER_ARRIVAL, D_GAP, D_STEP, D_FREE_DAYS,
 D_ENTRANCE, D_EXIT, D_R, D_A, D_PEAK) = range(16)
# exit reasons, by name (their codes come from sim.R_CODE)
REASON_NAMES = ("No specific reason for exit", "Day ended", "Too unhappy", "Ran out of energy",
                "Spent all their money", "Too thirsty", "Too hungry", "Too few food shops", "Too few drink shops",
                "Too few rides", "Too few unique drink shops", "Too few unique food shops", "Too few unique rides",
                "Too few unique attractions", "Walked by the exit")
(C_NONE, C_DAY_ENDED, C_UNHAPPY, C_ENERGY, C_MONEY, C_THIRSTY, C_HUNGRY, C_FEW_FOOD, C_FEW_DRINK, C_FEW_RIDES,
 C_UNIQUE_DRINK, C_UNIQUE_FOOD, C_UNIQUE_RIDES, C_UNIQUE_ATTR, C_WALKED) = range(15)


# -- small helpers ----------------------------------------------------------------------

@_jit
def _psum_block(w, lo, n):
    """numpy's pairwise sum of a piece of at most 128 values: eight running sums, then the rest."""
    if n < 8:
        r = 0.0
        for i in range(lo, lo + n):
            r += w[i]
        return r
    r0, r1, r2, r3 = w[lo], w[lo + 1], w[lo + 2], w[lo + 3]
    r4, r5, r6, r7 = w[lo + 4], w[lo + 5], w[lo + 6], w[lo + 7]
    i = 8
    m = n - n % 8
    while i < m:
        r0 += w[lo + i]
        r1 += w[lo + i + 1]
        r2 += w[lo + i + 2]
        r3 += w[lo + i + 3]
        r4 += w[lo + i + 4]
        r5 += w[lo + i + 5]
        r6 += w[lo + i + 6]
        r7 += w[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += w[lo + i]
        i += 1
    return res


@_jit
def _psum(w):
    """numpy's pairwise sum of ``w`` (what ``ndarray.sum`` returns, bit for bit).

    numpy splits a piece longer than 128 at half its length (rounded down to a multiple of 8) and
    adds the two halves' sums; the same tree is walked here with an explicit stack (a cached numba
    function that calls a recursive one crashes when loaded from the cache)."""
    los = np.empty(64, np.int64)
    ns = np.empty(64, np.int64)
    right = np.zeros(64, np.bool_)      # the frame's left half is done, its right half is on top
    left = np.empty(64)
    top = 0
    los[0], ns[0], right[0] = 0, len(w), False
    while True:
        k = ns[top]
        if k > 128:                     # descend into the left half
            n2 = k // 2
            n2 -= n2 % 8
            top += 1
            los[top], ns[top], right[top] = los[top - 1], n2, False
            continue
        ret = _psum_block(w, los[top], k)
        top -= 1
        while top >= 0:
            if not right[top]:          # a left half finished: keep it, go into the right half
                left[top] = ret
                right[top] = True
                n2 = ns[top] // 2
                n2 -= n2 % 8
                top += 1
                los[top], ns[top], right[top] = los[top - 1] + n2, ns[top - 1] - n2, False
                break
            ret = left[top] + ret       # a right half finished: add the halves, go up
            top -= 1
        if top < 0:
            return ret


@_jit
def _pick(rng, here, tiles, weights, dist, wbuf):
    """The staff's distance-weighted choice among ``tiles`` (sim._Day._pick); -1 when none.

    (Counts travel as slice lengths: an int argument that starts as a constant makes numba compile
    the callee twice, once for the literal.)"""
    k = len(tiles)
    if k == 0:
        return -1
    for i in range(k):
        t = tiles[i]
        if t == here:
            d = 1.0
        else:
            d = float(dist[here, t])
            if d < 2.0:
                d = 2.0
        wbuf[i] = weights[i] / d
    tot = _psum(wbuf[:k])
    if not tot > 0:
        return -1
    u = rng.random() * tot
    c = 0.0
    for i in range(k):
        c += wbuf[i]
        if c > u:
            return tiles[i]
    return tiles[k - 1]


@_jit
def _walk(here, dest, steps, stepm, ST, s):
    for _ in range(steps):
        if here == dest:
            break
        nxt = stepm[here, dest]
        if nxt < 0:
            break
        here = nxt
        ST[s, T_TILES] += 1
    return here


@_jit
def _q_remove(qbuf, qhead, qlen, r, g, Q):
    """Remove guest ``g`` from ride ``r``'s queue (ring buffer), keeping the order; False if absent."""
    h, m = qhead[r], qlen[r]
    for p in range(m):
        if qbuf[r, (h + p) % Q] == g:
            for k in range(p, m - 1):
                qbuf[r, (h + k) % Q] = qbuf[r, (h + k + 1) % Q]
            qlen[r] = m - 1
            return True
    return False


@_jit
def _b_remove(bbuf, blen, r, g):
    m = blen[r]
    for p in range(m):
        if bbuf[r, p] == g:
            for k in range(p, m - 1):
                bbuf[r, k] = bbuf[r, k + 1]
            blen[r] = m - 1
            return True
    return False


# -- a guest at a shop -----------------------------------------------------------------------

@_jit
def _shop(rng, g, a, GF, GI, GB, visits, D, U, codes, att_key, att_price, att_tile_x, oos, inventory, clean, SI,
          SE, atm_att, dist, atm_prev, tbuf, wbuf, onebuf):
    R = D[D_R]
    j = a - R
    key = att_key[a]
    pen = U[U_PEN]
    if oos[a]:
        SI[j, S_ATTEMPTED] += 1
        GF[HAP, g] = max(0.0, GF[HAP, g] - pen)
        v = visits[g, key]
        if not np.isnan(v):
            visits[g, key] = max(v * 2, 2.0)
        return
    price = att_price[a]
    if GF[MONEY, g] < price or rng.random() > clean[att_tile_x[a]]:
        GF[HAP, g] = max(0.0, GF[HAP, g] - pen)
        v = visits[g, key]
        if not np.isnan(v):
            visits[g, key] = max(v * 2, 2.0)
        return
    GF[MONEY, g] -= price
    GF[SPENT, g] += price
    ip = int(price)
    D[D_MONEY] += ip
    D[D_REVENUE] += ip
    SI[j, S_REV] += ip
    SI[j, S_SERVED] += 1
    SI[j, S_ATTEMPTED] += 1
    inventory[a] -= 1
    if inventory[a] <= 0:
        oos[a] = True
    sub, col = SI[j, S_SUB], SI[j, S_COL]
    if sub == FOOD:
        GI[FOOD_V, g] += 1
        GF[HUN, g] = max(0.0, GF[HUN, g] - SE[j, E_HUNGER_RED])
        GF[THI, g] = max(0.0, GF[THI, g] - SE[j, E_THIRST_RED])
        GF[HAP, g] = min(1.0, GF[HAP, g] + SE[j, E_HAPPY])
    elif sub == DRINK:
        GI[DRINK_V, g] += 1
        GF[THI, g] = max(0.0, GF[THI, g] - SE[j, E_THIRST_RED])
        GF[HAP, g] = min(1.0, GF[HAP, g] + SE[j, E_HAPPY])
        if SE[j, E_HAS_ENERGY] > 0:
            GF[ENERGY, g] += SE[j, E_ENERGY]
            GF[CAFF, g] = SE[j, E_CAFF_STEPS] / 2.0 ** GF[NCAFF, g]
            GF[NCAFF, g] += 1
    else:
        GI[SPEC_V, g] += 1
        if col == YELLOW:
            GF[HAP, g] = min(1.0, GF[HAP, g] + SE[j, E_HAPPY] * 2.0 ** (-GF[SOUV, g]))
            GF[SOUV, g] += 1
        elif col == BLUE:
            GB[INFO, g] = True
        elif col == GREEN:
            w = max(SE[j, E_MIN_WITHDRAW], np.rint(SE[j, E_WITHDRAW] / 2.0 ** GF[ATM, g]))
            GF[MONEY, g] += w
            GF[ATM, g] += 1
        else:
            soft = U[U_SOFT]
            GF[THI, g] = min(soft, GF[THI, g] + SE[j, E_THIRST_BOOST])
            GF[HUN, g] = min(soft, GF[HUN, g] + SE[j, E_HUNGER_BOOST])
            GF[HAP, g] = min(1.0, GF[HAP, g] + SE[j, E_HAPPY])
            for k in range(12, 24):
                visits[g, k] = 0.0
            if GF[MONEY, g] < SE[j, E_MONEY_THRESHOLD] and len(atm_att) > 0:
                if len(atm_att) == 1:
                    atm_prev[g] = atm_att[0]
                else:
                    for i in range(len(atm_att)):
                        tbuf[i] = att_tile_x[atm_att[i]]
                    t = _pick(rng, GI[POS, g], tbuf[:len(atm_att)], onebuf[:len(atm_att)], dist, wbuf)
                    for i in range(len(atm_att)):
                        if tbuf[i] == t:
                            atm_prev[g] = atm_att[i]
                            break
    v = visits[g, key]
    visits[g, key] = (0.0 if np.isnan(v) else v) + 1


# -- the day ---------------------------------------------------------------------------------

@_jit
def _choose(rng, C, GF, GI, GB, visits, D, U, codes, att_sub, att_key, att_price, att_tile_x, ride_w, is_spec_f,
            oos, clean, dist, RI, qlen, blen, stopped, mrow, wrow):
    """New targets for the guests ``C`` (sim._Day._choose); marks in ``stopped`` who stand still."""
    R, A, exit_ = D[D_R], D[D_A], D[D_EXIT]
    hard_t, soft_t = U[U_HARD], U[U_SOFT]
    exit_d = U[U_EXIT_DIST]
    for ci in range(len(C)):
        g = C[ci]
        hun, thi, hap = GF[HUN, g], GF[THI, g], GF[HAP, g]
        hard = (hun > hard_t) or (thi > hard_t)
        GB[HARD, g] = hard
        nxt, prev, pos = GI[NXT, g], GI[PREV, g], GI[POS, g]
        if thi > soft_t and thi > hun:
            cat = 0
        elif hun > soft_t:
            cat = 1
        elif hap < 1 - soft_t:
            cat = 2
        elif nxt >= 0:
            cat = 3
        else:
            cat = 4
        for a in range(A):
            s = att_sub[a]
            if cat == 0:
                mrow[a] = s == DRINK
            elif cat == 1:
                mrow[a] = s == FOOD
            elif cat == 2:
                mrow[a] = a < R
            elif cat == 4:
                mrow[a] = a < R or s == FOOD or s == DRINK
            else:
                mrow[a] = False
        if cat == 3:
            if nxt < A:
                mrow[nxt] = True
        elif prev >= 0 and prev < A:
            mrow[prev] = False
        u = rng.random()
        anym = False
        for a in range(A):
            if mrow[a]:
                anym = True
                break
        if not anym and cat <= 2:
            GI[TGT, g] = A
            GI[REASON, g] = codes[C_FEW_DRINK] if cat == 0 else (codes[C_FEW_FOOD] if cat == 1 else codes[C_FEW_RIDES])
            stopped[g] = True
            continue
        info, sti = GB[INFO, g], GB[STATUS_INFO, g]
        money = GF[MONEY, g]
        scale = (thi + hun + (1 - hap)) * (2.0 if hard else 1.0)
        scale = scale * (0.5 if GF[CAFF, g] > 0 else 1.0)
        scale = min(max(scale, 0.5), 2.0)
        n_t = 0
        for a in range(A):
            w = 0.0
            if mrow[a]:
                t = att_tile_x[a]
                ok = True
                if info and not (money >= att_price[a]):
                    ok = False
                if sti and not ((not oos[a]) and clean[t] > 0.4):
                    ok = False
                d = dist[pos, t]
                if d < 0:
                    ok = False
                if ok:
                    n_t += 1
                    v = visits[g, att_key[a]]
                    v = 0.0 if np.isnan(v) else max(v, 0.0)
                    s = att_sub[a]
                    f = ride_w[a] + is_spec_f[a]
                    if s == FOOD:
                        f = f + 10 * hun
                    if s == DRINK:
                        f = f + 10 * thi
                    wg = 4.0 * f / np.exp2(v)
                    if sti:
                        if a < R:
                            busy = 1 / max(1.0, (qlen[a] + blen[a]) / float(RI[a, R_CAP]))
                        else:
                            busy = 1.0
                        wg = wg * (busy * clean[t] * (0.001 if oos[a] else 1.0))
                    dd = 1.0 if pos == t else max(float(d), 2.0)
                    w = wg / dd ** scale
            wrow[a] = w
        ew = float(n_t + 1) - 0.99
        ew = ew * (0.5 if info else 1.0) * (0.5 if sti else 1.0)
        wrow[A] = ew / (1.0 if pos == exit_ else exit_d) ** scale
        tot = 0.0
        for a in range(A + 1):
            tot += wrow[a]
        target = u * tot
        pick = 0
        c = 0.0
        for a in range(A + 1):
            c += wrow[a]
            if target < c:
                pick = a
                break
        GI[TGT, g] = pick
        GI[NXT, g] = -1
        if pick == A and GI[REASON, g] == codes[C_NONE]:
            if cat == 0:
                GI[REASON, g] = codes[C_UNIQUE_DRINK]
            elif cat == 1:
                GI[REASON, g] = codes[C_UNIQUE_FOOD]
            elif cat == 2:
                GI[REASON, g] = codes[C_UNIQUE_RIDES]
            else:
                GI[REASON, g] = codes[C_UNIQUE_ATTR]


@_jit
def _run(rng, GF, GI, GB, visits, D, U, codes, kind, tile_att, dist, stepm, passby, att_tile_x, att_sub, att_key,
         att_price, ride_w, is_spec_f, is_info, pass_chance, oos, inventory, clean, RI, RF, ride_uptime, wait_time,
         queued, entertained, operated, ride_cost, ride_rev, SI, SE, atm_att, ST, SF, cleanable):
    G = GF.shape[1]
    R, A = D[D_R], D[D_A]
    n_staff = ST.shape[0]
    n_shops = SI.shape[0]
    entrance, exit_ = D[D_ENTRANCE], D[D_EXIT]
    hard_t, soft_t = U[U_HARD], U[U_SOFT]
    pen = U[U_PEN]
    rating = U[U_RATING]
    # ride queues (ring buffers) and riders on board
    Q = max(G, 1)
    bmax = 1
    for i in range(R):
        bmax = max(bmax, RI[i, R_CAP])
    qbuf = np.zeros((R, Q), np.int64)
    qhead = np.zeros(R, np.int64)
    qlen = np.zeros(R, np.int64)
    bbuf = np.zeros((R, bmax), np.int64)
    blen = np.zeros(R, np.int64)
    # scratch
    L = np.empty(G, np.int64)
    act = np.empty(G, np.int64)
    O = np.empty(G, np.int64)
    C = np.empty(G, np.int64)
    AT = np.empty(G, np.int64)
    MV = np.empty(G, np.int64)
    stopped = np.zeros(G, np.bool_)
    atm_prev = np.full(G, -1, np.int64)
    mrow = np.zeros(A + 1, np.bool_)
    wrow = np.zeros(A + 1)
    NT = kind.shape[0]
    tbuf = np.empty(NT + 2, np.int64)
    wts = np.empty(NT + 2)
    wbuf = np.empty(NT + 2)
    onebuf = np.ones(max(len(atm_att), 1))
    cap, max_inside, per_arr, gap = D[D_CAP], D[D_MAX_INSIDE], D[D_PER_ARRIVAL], D[D_GAP]
    breaks = D[D_STEP] >= D[D_FREE_DAYS]

    for tick in range(TICKS):
        # -- arrivals
        if cap > 0 and D[D_INSIDE] < max_inside and tick % gap == 0 and rng.random() < rating / 100:
            a0 = D[D_N]
            b0 = a0 + per_arr
            for g in range(a0, b0):
                m = rng.normal(U[U_MONEY_MU], U[U_MONEY_SD])
                GF[START_MONEY, g] = m
                GF[MONEY, g] = m
            for g in range(a0, b0):
                GF[HAP, g] = min(max(rng.normal(U[U_HAP_MU], U[U_HAP_SD]), 0.0), 1.0)
            for g in range(a0, b0):
                GF[HUN, g] = min(max(rng.normal(U[U_HUN_MU], U[U_HUN_SD]), 0.0), 1.0)
            for g in range(a0, b0):
                GF[THI, g] = min(max(rng.normal(U[U_THI_MU], U[U_THI_SD]), 0.0), 1.0)
            for g in range(a0, b0):
                GF[ENERGY, g] = np.floor(rng.normal(U[U_EN_MU], U[U_EN_SD]))
            D[D_N] = b0
            D[D_INSIDE] += per_arr
            D[D_PEAK] = max(D[D_PEAK], D[D_INSIDE])
        n = D[D_N]
        # -- guests
        if n > 0:
            nL = 0
            for g in range(n):
                if not GB[EXITED, g]:
                    L[nL] = g
                    nL += 1
            if nL > 0:
                nact = 0
                for li in range(nL):
                    g = L[li]
                    GI[STEPS, g] += 1
                    if GB[WAITING, g]:
                        if GF[THI, g] > hard_t or GF[HUN, g] > hard_t:   # too hungry or thirsty to wait
                            r = GI[RIDE_OF, g]
                            GF[HAP, g] = max(0.0, GF[HAP, g] - pen)
                            GB[WAITING, g] = False
                            _q_remove(qbuf, qhead, qlen, r, g, Q)
                            _b_remove(bbuf, blen, r, g)
                            GI[RIDE_OF, g] = -1
                            act[nact] = g
                            nact += 1
                        else:
                            wait_time[GI[RIDE_OF, g]] += 1
                            GF[ENERGY, g] = max(0.0, GF[ENERGY, g] - U[U_WAIT_E])
                    else:
                        act[nact] = g
                        nact += 1
                # heading out
                nO = 0
                for ai in range(nact):
                    g = act[ai]
                    if GI[TGT, g] == A:
                        if GI[POS, g] == exit_:
                            GB[EXITED, g] = True
                            D[D_INSIDE] -= 1
                        else:
                            GI[POS, g] = stepm[GI[POS, g], exit_]
                    else:
                        O[nO] = g
                        nO += 1
                if nO > 0:
                    # leaving for a need; who chooses a new target
                    nC = 0
                    for oi in range(nO):
                        g = O[oi]
                        ha, hu, th = GF[HAP, g], GF[HUN, g], GF[THI, g]
                        why = -1
                        if ha == 0:
                            why = codes[C_UNHAPPY]
                        elif GF[ENERGY, g] <= 0:
                            why = codes[C_ENERGY]
                        elif GF[MONEY, g] <= 1:
                            why = codes[C_MONEY]
                        elif th >= 1:
                            why = codes[C_THIRSTY]
                        elif hu >= 1:
                            why = codes[C_HUNGRY]
                        if why >= 0:
                            GI[TGT, g] = A
                            GI[REASON, g] = why
                            continue
                        tg = GI[TGT, g]
                        tsub = att_sub[tg] if tg >= 0 else -1
                        if tg < 0 or (hu > hard_t and hu > th and tsub != FOOD) or \
                                (th > hard_t and th > hu and tsub != DRINK):
                            C[nC] = g
                            nC += 1
                    if nC > 0:
                        _choose(rng, C[:nC], GF, GI, GB, visits, D, U, codes, att_sub, att_key, att_price, att_tile_x,
                                ride_w, is_spec_f, oos, clean, dist, RI, qlen, blen, stopped, mrow, wrow)
                    nAT, nMV = 0, 0
                    for oi in range(nO):
                        g = O[oi]
                        if stopped[g]:
                            stopped[g] = False
                            continue
                        tg = GI[TGT, g]
                        if tg >= 0 and GI[POS, g] == att_tile_x[tg]:
                            AT[nAT] = g
                            nAT += 1
                        else:
                            MV[nMV] = g
                            nMV += 1
                    # at the target: the exit, a ride (all ride-goers draw first), then each shop customer
                    for i in range(nAT):
                        g = AT[i]
                        if GI[TGT, g] == A:
                            GB[EXITED, g] = True
                            D[D_INSIDE] -= 1
                    for i in range(nAT):
                        g = AT[i]
                        a = GI[TGT, g]
                        if a < R:
                            u = rng.random()
                            if oos[a] or GF[MONEY, g] < att_price[a] or u > clean[att_tile_x[a]]:
                                GF[HAP, g] = max(0.0, GF[HAP, g] - pen)
                                visits[g, att_key[a]] += 4
                            else:
                                GB[WAITING, g] = True
                                GI[RIDE_OF, g] = a
                                qbuf[a, (qhead[a] + qlen[a]) % Q] = g
                                qlen[a] += 1
                                queued[a] += 1
                                v = visits[g, att_key[a]]
                                visits[g, att_key[a]] = (0.0 if np.isnan(v) else max(v, 0.0)) + 1
                    for i in range(nAT):
                        g = AT[i]
                        a = GI[TGT, g]
                        if a >= R and a < A:
                            _shop(rng, g, a, GF, GI, GB, visits, D, U, codes, att_key, att_price, att_tile_x, oos,
                                  inventory, clean, SI, SE, atm_att, dist, atm_prev, tbuf, wbuf, onebuf)
                    for i in range(nAT):
                        g = AT[i]
                        if not GB[EXITED, g]:
                            GI[PREV, g] = GI[TGT, g]
                            GI[TGT, g] = -1
                            GI[NXT, g] = -1
                    for i in range(nAT):
                        g = AT[i]
                        if atm_prev[g] >= 0:      # a billboard's ATM hint becomes the last visit
                            GI[PREV, g] = atm_prev[g]
                            atm_prev[g] = -1
                    # walking: one energy a step; a neighbouring attraction may tempt a passer-by
                    for i in range(nMV):
                        g = MV[i]
                        GF[ENERGY, g] = max(0.0, GF[ENERGY, g] - 1)
                    for i in range(nMV):
                        g = MV[i]
                        pos = GI[POS, g]
                        if A > 0 and kind[pos] == PATH and not GB[HARD, g]:
                            u = rng.random()
                            prv, cur = GI[PREV, g], GI[TGT, g]
                            prv_t = att_tile_x[prv] if prv >= 0 else -2
                            cur_t = att_tile_x[cur] if cur >= 0 else -2
                            c = 0.0
                            took = -1
                            for k in range(4):
                                cand = passby[pos, k]
                                c0 = max(cand, 0)
                                ct = att_tile_x[c0]
                                ok = cand >= 0 and ct != prv_t and ct != cur_t and not (is_info[c0] and GB[INFO, g])
                                if ok:
                                    c += pass_chance[c0]
                                    if took < 0 and u <= c:
                                        took = cand
                            if took >= 0:
                                GI[PREV, g] = -1
                                GI[NXT, g] = GI[TGT, g]
                                GI[TGT, g] = took
                                if took == A and GI[REASON, g] == codes[C_NONE]:
                                    GI[REASON, g] = codes[C_WALKED]
                        dest = att_tile_x[GI[TGT, g]]
                        newpos = np.int64(stepm[pos, dest])
                        GI[POS, g] = newpos
                        if GF[CAFF, g] > 0:
                            if (newpos // N != dest // N) and (newpos % N != dest % N):
                                GF[ENERGY, g] = max(0.0, GF[ENERGY, g] - 1)
                                GI[POS, g] = stepm[newpos, dest]
                                GF[CAFF, g] -= 1
                # needs (not for guests heading out), then litter, for everyone in the park this tick
                dec = U[U_DECAY]
                for li in range(nL):
                    g = L[li]
                    if GI[TGT, g] == A:
                        continue
                    mult = U[U_WAIT_F] if GB[WAITING, g] else 1.0
                    hu = min(1.0, GF[HUN, g] + U[U_HUNGER_RATE] * mult)
                    ha = GF[HAP, g]
                    if hu > soft_t:
                        ha = max(0.0, ha - hu * dec)
                    th = min(1.0, GF[THI, g] + U[U_THIRST_RATE] * mult)
                    if th > soft_t:
                        ha = max(0.0, ha - th * dec)
                    ha = max(0.0, ha - dec * mult / 5)
                    c = clean[GI[POS, g]]
                    cnt = (1.0 if c < 0.8 else 0.0) + (1.0 if c < 0.6 else 0.0) + (1.0 if c < 0.4 else 0.0)
                    ha = max(0.0, ha - U[U_DIRTY] * cnt)
                    GF[HUN, g], GF[THI, g], GF[HAP, g] = hu, th, ha
                dropped = False
                for li in range(nL):
                    g = L[li]
                    ch = min(max((1 - GF[HAP, g]) / 2, U[U_LIT_LOW]), U[U_LIT_HIGH])
                    if GI[TGT, g] == A:
                        ch *= U[U_LIT_EXIT]
                    if rng.random() < ch:
                        clean[GI[POS, g]] -= U[U_LIT_AMOUNT]
                        dropped = True
                if dropped:
                    for t in range(NT):
                        if clean[t] < 0:
                            clean[t] = 0.0
        # -- rides
        for i in range(R):
            if oos[i]:
                continue
            ride_uptime[i] += 1
            ph = RI[i, R_PHASE]
            if ph == 0:
                k = min(RI[i, R_CAP] - blen[i], qlen[i])
                if k > 0:
                    price = RI[i, R_PRICE]
                    for _ in range(k):
                        g = qbuf[i, qhead[i]]
                        qhead[i] = (qhead[i] + 1) % Q
                        qlen[i] -= 1
                        GF[MONEY, g] -= price
                        GF[SPENT, g] += price
                        GI[RIDES_V, g] += 1
                        bbuf[i, blen[i]] = g
                        blen[i] += 1
                    D[D_MONEY] += price * k
                    D[D_REVENUE] += price * k
                    ride_rev[i] += price * k
                if blen[i] > 0 and RI[i, R_COUNTDOWN] <= -1:
                    RI[i, R_COUNTDOWN] = RI[i, R_CAP] * 2
                RI[i, R_COUNTDOWN] -= blen[i]
                if RI[i, R_COUNTDOWN] <= 0 and blen[i] > 0:
                    RI[i, R_PHASE] = 1
            elif ph == 1:
                cost = RI[i, R_COST]
                if D[D_MONEY] < cost:
                    continue
                operated[i] += 1
                D[D_MONEY] -= cost
                D[D_EXPENSES] += cost
                ride_cost[i] += cost
                if breaks and rng.random() < RF[i, R_BREAK]:
                    oos[i] = True
                    RI[i, R_REMAINING] = RI[i, R_REPAIR_WORK]
                    for p in range(qlen[i]):
                        g = qbuf[i, (qhead[i] + p) % Q]
                        GB[WAITING, g] = False
                        GI[RIDE_OF, g] = -1
                    for p in range(blen[i]):
                        g = bbuf[i, p]
                        GB[WAITING, g] = False
                        GI[RIDE_OF, g] = -1
                    qlen[i] = 0
                    blen[i] = 0
                    RI[i, R_PHASE] = 0
                    RI[i, R_COUNTDOWN] = -1
                else:
                    RI[i, R_PHASE] = 2
            else:
                nb = blen[i]
                if nb > 0:
                    boost = RF[i, R_EXC] / 20
                    for p in range(nb):
                        g = bbuf[i, p]
                        GF[HAP, g] = min(1.0, GF[HAP, g] + boost)
                        GB[WAITING, g] = False
                        GI[RIDE_OF, g] = -1
                    entertained[i] += nb
                blen[i] = 0
                RI[i, R_COUNTDOWN] = -1
                RI[i, R_PHASE] = 0
        # -- staff
        for s in range(n_staff):
            kd = ST[s, T_KIND]
            here = ST[s, T_POS]
            if kd == K_JANITOR:
                thr, rate = SF[s, F_P0], SF[s, F_P1]
                if ST[s, T_TGT] < 0:
                    k = 0
                    for t in cleanable:
                        c = clean[t]
                        if c < thr and (dist[here, t] >= 0 or t == here):
                            tbuf[k] = t
                            wts[k] = 1.0 / (c + 0.001)
                            k += 1
                    pick = _pick(rng, here, tbuf[:k], wts[:k], dist, wbuf)
                    ST[s, T_TGT] = pick
                    if pick < 0:
                        continue
                dest = ST[s, T_TGT]
                if here == dest:
                    if D[D_MONEY] < 1:
                        continue
                    SF[s, F_METRIC] += rate
                    D[D_MONEY] -= 1
                    D[D_EXPENSES] += 1
                    ST[s, T_COST] += 1
                    clean[dest] = min(1.2, clean[dest] + rate)
                    if clean[dest] >= thr:
                        ST[s, T_TGT] = -1
                    continue
                if rng.random() < 0.1 and clean[here] < thr:
                    if D[D_MONEY] < 1:
                        continue
                    SF[s, F_METRIC] += rate
                    D[D_MONEY] -= 1
                    D[D_EXPENSES] += 1
                    ST[s, T_COST] += 1
                    clean[here] = min(1.0, clean[here] + rate)
                    continue
                ST[s, T_POS] = _walk(here, dest, ST[s, T_STEPS], stepm, ST, s)
            elif kd == K_MECHANIC:
                rate = ST[s, T_RATE]
                tgt = ST[s, T_TGT]
                ride_at = -1
                if tgt >= 0:
                    a = tile_att[tgt]
                    if a < 0 or a >= R:
                        ST[s, T_TGT] = tgt = -1
                    else:
                        ride_at = a
                if tgt < 0:
                    k = 0
                    for i in range(R):
                        if oos[i]:
                            t = att_tile_x[i]
                            if dist[here, t] >= 0 or t == here:
                                tbuf[k] = t
                                wts[k] = 1.0
                                k += 1
                    pick = _pick(rng, here, tbuf[:k], wts[:k], dist, wbuf)
                    if pick < 0:
                        continue
                    ST[s, T_TGT] = pick
                    ride_at = tile_att[pick]
                dest = att_tile_x[ride_at]
                if here == dest and D[D_MONEY] >= rate:
                    if RI[ride_at, R_REMAINING] <= 0:
                        RI[ride_at, R_REMAINING] = 0
                        oos[ride_at] = False
                        ST[s, T_TGT] = -1
                    else:
                        RI[ride_at, R_REMAINING] -= rate
                        D[D_MONEY] -= rate
                        D[D_EXPENSES] += rate
                        SF[s, F_METRIC] += rate
                        ST[s, T_COST] += rate
                    continue
                ST[s, T_POS] = _walk(here, dest, ST[s, T_STEPS], stepm, ST, s)
            elif kd == K_STOCKER:
                carried = ST[s, T_CARRIED]
                if TICKS - tick < SF[s, F_P0] and carried == 0:
                    continue
                tgt = ST[s, T_TGT]
                if tgt < 0:
                    k = 0
                    for j in range(n_shops):
                        q = SI[j, S_ORDER]
                        a = R + j
                        t = att_tile_x[a]
                        if q > 0 and inventory[a] / q < SF[s, F_P1] and (dist[here, t] >= 0 or t == here):
                            tbuf[k] = t
                            wts[k] = q / (inventory[a] + 0.1)
                            k += 1
                    if k == 0:
                        continue
                    shop = _pick(rng, here, tbuf[:k], wts[:k], dist, wbuf)
                    ST[s, T_NEXT] = shop
                    ST[s, T_TOUCHED] |= 1
                    de = max(float(dist[here, exit_]), 1.0)
                    dn = max(float(dist[here, entrance]), 1.0)
                    tbuf[0], tbuf[1] = exit_, entrance
                    wts[0], wts[1] = 1 / de, 1 / dn
                    ST[s, T_TGT] = _pick(rng, here, tbuf[:2], wts[:2], dist, wbuf)
                    continue
                if here == tgt:
                    nt = ST[s, T_NEXT]
                    if nt < 0:
                        a = tile_att[tgt]
                        if a >= R:
                            inventory[a] += carried
                            if inventory[a] > 0:
                                oos[a] = False
                            SI[a - R, S_RESTOCKS] += 1
                        SF[s, F_METRIC] += carried
                        ST[s, T_CARRIED] = 0
                        ST[s, T_TOUCHED] |= 2
                        ST[s, T_TGT] = -1
                    else:
                        a = tile_att[nt]
                        if a >= R:
                            j = a - R
                            q = SI[j, S_ORDER]
                            ic = SI[j, S_ITEM_COST]
                            c = min(int(SF[s, F_P2]), q - inventory[a], int(math.floor(q * SF[s, F_P3])))
                            if ic != 0:
                                c = min(D[D_MONEY] // ic, c)
                            c = max(c, 0)
                            D[D_MONEY] -= c * ic
                            D[D_EXPENSES] += c * ic
                            ST[s, T_COST] += c * ic
                            ST[s, T_CARRIED] = c
                            ST[s, T_TOUCHED] |= 2
                        ST[s, T_TGT] = nt
                        ST[s, T_NEXT] = -1
                    continue
                ST[s, T_POS] = _walk(here, tgt, ST[s, T_STEPS], stepm, ST, s)
            else:   # clown, park crier, vendor: walk to a busy ride and serve its line
                tgt = ST[s, T_TGT]
                if tgt < 0:
                    k = 0
                    for i in range(R):
                        t = att_tile_x[i]
                        if (dist[here, t] >= 0 or t == here) and (kd != K_CLOWN or not oos[i]):
                            tbuf[k] = t
                            k += 1
                    for i in range(R):     # the game weighs them with the line lengths of all rides, in order
                        wts[i] = qlen[i] + blen[i] + 0.1
                    ST[s, T_TGT] = _pick(rng, here, tbuf[:k], wts[:k], dist, wbuf)
                    continue
                if here == tgt:
                    a = tile_att[tgt]
                    if a >= 0 and a < R:
                        cnt = 0
                        for p in range(qlen[a] + blen[a]):
                            g = qbuf[a, (qhead[a] + p) % Q] if p < qlen[a] else bbuf[a, p - qlen[a]]
                            if kd == K_CLOWN:
                                GF[HAP, g] = min(1.0, GF[HAP, g] + SF[s, F_P0])
                            elif kd == K_CRIER:
                                GB[STATUS_INFO, g] = True
                            else:
                                GF[HUN, g] = max(0.0, GF[HUN, g] - SF[s, F_P1])
                                GF[THI, g] = max(0.0, GF[THI, g] - SF[s, F_P2])
                            cnt += 1
                        SF[s, F_METRIC] += cnt + (1 if kd == K_VENDOR else 0)
                    ST[s, T_TGT] = -1
                    continue
                ST[s, T_POS] = _walk(here, tgt, ST[s, T_STEPS], stepm, ST, s)

    # -- closing: guests still inside leave; one standing in a shop is served once more
    n = D[D_N]
    for g in range(n):
        if not GB[EXITED, g]:
            GB[WAITING, g] = False
    for g in range(n):
        if not GB[EXITED, g]:
            a = tile_att[GI[POS, g]]
            if a >= R:
                _shop(rng, g, a, GF, GI, GB, visits, D, U, codes, att_key, att_price, att_tile_x, oos, inventory,
                      clean, SI, SE, atm_att, dist, atm_prev, tbuf, wbuf, onebuf)
    for g in range(n):
        if not GB[EXITED, g]:
            GI[REASON, g] = codes[C_DAY_ENDED]
        GB[EXITED, g] = True


# -- glue: a sim._Day in, the same fields out -------------------------------------------------

def play_day(day, rating: float, cap: int, max_inside: int, per_arrival: int, gap: int) -> None:
    """Run the ticks and the closing of ``day`` (a ``sim._Day`` after its morning) with the kernel."""
    from . import sim
    from .params import COLOURS, GRID_SIZE, TICKS_PER_DAY
    from .sim import R_CODE, _SUB_CODE
    if ((sim.EMPTY, sim.PATH, sim.WATER, sim.FOOD, sim.DRINK, sim.SPECIALTY, GRID_SIZE, TICKS_PER_DAY, COLOURS)
            != (EMPTY, PATH, WATER, FOOD, DRINK, SPECIALTY, N, TICKS, ("yellow", "blue", "green", "red"))):
        raise RuntimeError("the codes in theme_park/sim.py or params.py changed: update _kernels.py to match")
    s, p, rules = day.s, day.p, day.rules
    R, A = day.R, day.A
    rt = day.rt
    GF = np.stack([getattr(day, k) for k in G_FLOAT])
    GI = np.stack([getattr(day, k) for k in G_INT]).astype(np.int64)
    GB = np.stack([getattr(day, k) for k in G_FLAG])
    D = np.zeros(16, np.int64)
    D[D_MONEY], D[D_REVENUE], D[D_EXPENSES] = day.money, day.revenue, day.expenses
    D[D_N], D[D_INSIDE] = day.n, day.inside
    D[D_CAP], D[D_MAX_INSIDE], D[D_PER_ARRIVAL], D[D_GAP] = cap, max_inside, per_arrival, gap
    D[D_STEP], D[D_FREE_DAYS] = int(s["step"]), int(rules["breakdown_free_days"])
    D[D_ENTRANCE], D[D_EXIT], D[D_R], D[D_A] = day.entrance, day.exit, R, A
    U = np.zeros(25)
    for i, key in enumerate(RULE_KEYS):
        U[i] = float(rules[key])
    U[U_RATING] = rating
    U[U_MONEY_MU], U[U_MONEY_SD] = rules["guest_money"]
    U[U_HAP_MU], U[U_HAP_SD] = rules["guest_happiness"]
    U[U_HUN_MU], U[U_HUN_SD] = rules["guest_hunger"]
    U[U_THI_MU], U[U_THI_SD] = rules["guest_thirst"]
    U[U_EN_MU], U[U_EN_SD] = rules["guest_energy"]
    codes = np.array([R_CODE[name] for name in REASON_NAMES], np.int64)
    # rides
    RI = np.zeros((R, 7), np.int64)
    RF = np.zeros((R, 2))
    for i, r in enumerate(day.rides):
        RI[i, R_CAP], RI[i, R_PRICE], RI[i, R_COST] = r["capacity"], r["ticket_price"], r["cost_per_operation"]
        RI[i, R_REPAIR_WORK] = int(round(p.rides[r["subtype"]][r["subclass"]]["building_cost"]
                                         * rules["repair_work_share"]))
        RI[i, R_REMAINING] = r["remaining_repair_time"]
        RI[i, R_PHASE], RI[i, R_COUNTDOWN] = day.phase[i], day.countdown[i]
        RF[i, R_BREAK], RF[i, R_EXC] = r["breakdown_rate"], r["excitement"]
    # shops
    S = len(day.shops)
    SI = np.zeros((S, 8), np.int64)
    SE = np.zeros((S, 11))
    atm = []
    for j, sh in enumerate(day.shops):
        col = COLOURS.index(sh["subclass"])
        SI[j, S_SUB], SI[j, S_COL] = _SUB_CODE[sh["subtype"]], col
        SI[j, S_ORDER], SI[j, S_ITEM_COST] = sh["order_quantity"], sh["item_cost"]
        SI[j, S_ATTEMPTED], SI[j, S_SERVED] = sh["services_attempted"], sh["guests_served"]
        SI[j, S_REV], SI[j, S_RESTOCKS] = sh["revenue_generated"], sh["number_of_restocks"]
        t = p.shops[sh["subtype"]][sh["subclass"]]
        for e, key in enumerate(SHOP_EFFECTS):
            if key is not None:
                SE[j, e] = float(t.get(key, 0))
        SE[j, E_HAS_ENERGY] = 1.0 if "energy_boost" in t else 0.0
        if sh["subtype"] == "specialty" and sh["subclass"] == "green":
            atm.append(R + j)
    # staff
    staff = day.staff
    ST = np.full((len(staff), 10), 0, np.int64)
    SF = np.zeros((len(staff), 5))
    for k, st in enumerate(staff):
        sub, col = st["subtype"], st["subclass"]
        t = p.staff[sub][col]
        tile = lambda v: -1 if v is None else int(v[0]) * N + int(v[1])  # noqa: E731
        ST[k, T_POS] = int(st["x"]) * N + int(st["y"])
        ST[k, T_TGT] = tile(st.get("target"))
        ST[k, T_NEXT] = tile(st.get("next_target"))
        ST[k, T_CARRIED] = int(st.get("carried_inventory", 0))
        ST[k, T_COST] = int(st["operating_cost"])
        ST[k, T_TILES] = int(st["tiles_traversed"])
        SF[k, F_METRIC] = st["success_metric_value"]
        if sub == "janitor":
            ST[k, T_KIND], ST[k, T_STEPS] = K_JANITOR, t["steps"]
            SF[k, F_P0], SF[k, F_P1] = t["cleaning_threshold"], t["clean_rate"]
        elif sub == "mechanic":
            ST[k, T_KIND], ST[k, T_STEPS], ST[k, T_RATE] = K_MECHANIC, t["steps"], t["repair_rate"]
        elif col == "blue":
            ST[k, T_KIND], ST[k, T_STEPS] = K_STOCKER, 2
            SF[k, F_P0], SF[k, F_P1] = t["idle_ticks"], t["restock_threshold"]
            SF[k, F_P2], SF[k, F_P3] = t["max_inventory"], t["stocking_rate"]
        else:
            ST[k, T_KIND] = {"yellow": K_CLOWN, "green": K_CRIER, "red": K_VENDOR}[col]
            ST[k, T_STEPS] = {"yellow": 1, "green": 2, "red": 3}[col]
            SF[k, F_P0] = t.get("happiness_boost", 0.0)
            SF[k, F_P1], SF[k, F_P2] = t.get("hunger_reduction", 0.0), t.get("thirst_reduction", 0.0)
    kind = day.kind
    cleanable = ((kind != EMPTY) & (kind != WATER)).nonzero()[0].astype(np.int64)
    _run(day.rng, GF, GI, GB, day.visits, D, U, codes, kind, day.tile_att, rt.dist, rt.step, day.passby,
         day.att_tile_x, day.att_sub, day.att_key, day.att_price, day.ride_w, day.is_spec_f, day.is_info,
         day.pass_chance, day.oos, day.inventory, day.clean, RI, RF, day.ride_uptime, day.wait_time, day.queued,
         day.entertained, day.operated, day.ride_cost, day.ride_rev, SI, SE, np.array(atm, np.int64), ST, SF,
         cleanable)
    # everything back where the numpy engine keeps it
    for k, name in enumerate(G_FLOAT):
        setattr(day, name, GF[k])
    for k, name in enumerate(G_INT):
        setattr(day, name, GI[k])
    for k, name in enumerate(G_FLAG):
        setattr(day, name, GB[k])
    day.money, day.revenue, day.expenses = int(D[D_MONEY]), int(D[D_REVENUE]), int(D[D_EXPENSES])
    day.n, day.inside, day.peak_inside = int(D[D_N]), int(D[D_INSIDE]), int(D[D_PEAK])
    for i, r in enumerate(day.rides):
        r["remaining_repair_time"] = int(RI[i, R_REMAINING])
    for j, sh in enumerate(day.shops):
        sh["services_attempted"], sh["guests_served"] = int(SI[j, S_ATTEMPTED]), int(SI[j, S_SERVED])
        sh["revenue_generated"], sh["number_of_restocks"] = int(SI[j, S_REV]), int(SI[j, S_RESTOCKS])
        sh["inventory"] = int(day.inventory[R + j])
    for k, st in enumerate(staff):
        pos = int(ST[k, T_POS])
        st["x"], st["y"] = pos // N, pos % N
        tg = int(ST[k, T_TGT])
        st["target"] = None if tg < 0 else [tg // N, tg % N]
        if ST[k, T_TOUCHED] & 1 or "next_target" in st:
            nt = int(ST[k, T_NEXT])
            st["next_target"] = None if nt < 0 else [nt // N, nt % N]
        if ST[k, T_TOUCHED] & 2 or "carried_inventory" in st:
            st["carried_inventory"] = int(ST[k, T_CARRIED])
        st["operating_cost"] = int(ST[k, T_COST])
        st["tiles_traversed"] = int(ST[k, T_TILES])
        st["success_metric_value"] = float(SF[k, F_METRIC])
