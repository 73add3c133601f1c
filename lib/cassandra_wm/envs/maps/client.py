"""Talking to a user-installed Mini Amusement Parks game: its Node server and its HTTP API.

:class:`GameServer` starts the game's backend (``node map_backend/server.js``) from the user's
checkout on 127.0.0.1 and stops it; :class:`GameClient` drives one park through the same HTTP
endpoints the game's own Python wrapper uses, with the wrapper's client-side argument checks
(:func:`~cassandra_wm.envs.theme_park.actions.normalise`), and turns the game's raw state into the
agent-facing observation (:func:`observation_from_raw`, the wrapper's observation model as a
dict, plus the raw fields our state keeps).

The game's own Python package needs Python 3.12 or newer; talking HTTP directly keeps this
adapter usable from the bundle's Python (3.10+).  Nothing of the game is shipped with the bundle.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable

from ..theme_park.actions import Refusal, normalise, reason_of
from ..theme_park.params import START_GUEST_HAPPINESS

INSTALL_HINT = ("Install the game: clone https://github.com/Skyfall-Research/MAPs, run `npm install` in the clone "
                "(Node.js 20 or newer), and point the bundle at it with MAPS_GAME_DIR=/path/to/MAPs "
                "(or game_dir=...).")


class GameError(RuntimeError):
    """The real game is missing, would not start, or failed while running."""


def find_game_dir(game_dir: str | os.PathLike | None = None) -> Path:
    """The game's checkout: ``game_dir``, else ``$MAPS_GAME_DIR``; checked for the server and its modules."""
    raw = game_dir if game_dir is not None else os.environ.get("MAPS_GAME_DIR")
    if not raw:
        raise GameError("the real Mini Amusement Parks game is not configured: no game_dir and no MAPS_GAME_DIR. "
                        + INSTALL_HINT)
    d = Path(raw).expanduser()
    if not (d / "map_backend" / "server.js").is_file():
        raise GameError(f"{d} is not a Mini Amusement Parks checkout (no map_backend/server.js). " + INSTALL_HINT)
    if not (d / "shared" / "config.yaml").is_file():
        raise GameError(f"{d} lacks shared/config.yaml; is the checkout complete? " + INSTALL_HINT)
    if not (d / "node_modules" / "express").is_dir():
        raise GameError(f"the game's Node modules are missing in {d}: run `npm install` there. " + INSTALL_HINT)
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GameServer:
    """The game's Node backend, started on 127.0.0.1 from ``game_dir`` (a context manager)."""

    def __init__(self, game_dir: str | os.PathLike | None = None, port: int | None = None,
                 node: str | None = None, start_timeout: float = 60.0):
        self.game_dir = find_game_dir(game_dir)
        self.node = node or shutil.which("node")
        if not self.node:
            raise GameError("Node.js is not installed (no `node` on PATH); the game's backend needs Node 20 or newer. "
                            + INSTALL_HINT)
        self.port = int(port or _free_port())
        self.start_timeout = float(start_timeout)
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/"

    def start(self) -> "GameServer":
        import tempfile
        fd, name = tempfile.mkstemp(prefix="maps_server_", suffix=".log")
        os.close(fd)
        self.log_path = Path(name)
        env = dict(os.environ, MAP_PORT=str(self.port))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([self.node, "map_backend/server.js"], cwd=self.game_dir, env=env,
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise GameError(f"the game's server exited at start (code {self.proc.returncode}): {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "park/?parkId=none", timeout=2):
                    pass
                return self
            except urllib.error.HTTPError:
                return self  # it answered (400 for the unknown park): it is up
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
        self.stop()
        raise GameError(f"the game's server did not answer on 127.0.0.1:{self.port} within {self.start_timeout:g} s: "
                        f"{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 1500) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-n:].strip() or "(empty log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if self.log_path is not None:
            try:
                self.log_path.unlink()
            except OSError:
                pass
            self.log_path = None

    def __enter__(self) -> "GameServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


Transport = Callable[[str, str, dict | None], tuple[int, dict]]


def http_transport(base_url: str, timeout: float = 120.0) -> Transport:
    """``(method, endpoint, payload) -> (status, json)`` over HTTP to ``base_url``."""

    def call(method: str, endpoint: str, payload: dict | None) -> tuple[int, dict]:
        url = base_url + endpoint
        data = None
        headers = {}
        if method == "GET":
            if payload:
                url += "?" + urllib.parse.urlencode(payload)
        else:
            data = json.dumps(payload or {}).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return e.code, json.loads(body or b"{}")
            except json.JSONDecodeError:
                return e.code, {"message": body.decode(errors="replace")[:500], "data": {}}
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            raise GameError(f"lost contact with the game's server at {base_url}: {e}") from None

    return call


class GameClient:
    """One park on the game's server, driven with the game's action text.

    ``transport`` is ``(method, endpoint, payload) -> (status, json)``; tests replay recorded
    exchanges through it.  ``record`` (a list) receives every exchange when given.
    """

    def __init__(self, transport: Transport, record: list | None = None):
        self.transport = transport
        self.record = record
        self.park_id: str | None = None

    def _call(self, method: str, endpoint: str, payload: dict | None = None) -> tuple[int, dict]:
        status, body = self.transport(method, endpoint, payload)
        if self.record is not None:
            self.record.append({"method": method, "endpoint": endpoint, "payload": payload, "status": status,
                                "body": body})
        if status >= 500:
            raise GameError(f"the game's server failed on {method} {endpoint}: {body.get('message', body)}")
        if status == 404:
            raise GameError(f"the game's server has no endpoint {method} {endpoint}; is it a compatible version?")
        return status, body

    def new_park(self) -> str:
        st, body = self._call("GET", "park/get_new_park_id", {})
        if st != 200:
            raise GameError(f"the game refused a new park: {body.get('message')}")
        self.park_id = body["data"]["parkId"]
        return self.park_id

    def reset(self, layout: str, seed: int, difficulty: str = "easy", starting_money: int | None = None,
              horizon: int | None = None) -> dict:
        if self.park_id is None:
            self.new_park()
        self._call("POST", "park/seed", {"parkId": self.park_id, "seed": int(seed)})
        st, body = self._call("POST", "park/reset", {"parkId": self.park_id, "layout": layout, "difficulty": difficulty,
                                                      "starting_money": starting_money, "horizon": horizon})
        if st != 200:
            raise GameError(f"the game could not reset to layout {layout!r}: {body.get('message')}")
        return self.raw_state()

    def raw_state(self) -> dict:
        st, body = self._call("GET", "park/", {"parkId": self.park_id, "fullState": "true", "includeGuests": "false"})
        if st != 200:
            raise GameError(f"the game did not return its state: {body.get('message')}")
        return body["data"]

    def act(self, action: Any) -> tuple[bool, str, str | None]:
        """Send the morning action; returns ``(valid, message, reason)``.  Never raises on a bad action."""
        try:
            name, args, text = normalise(action)
        except Refusal as r:
            return False, r.message, r.reason
        args = dict(args, parkId=self.park_id)
        kind = args.get("type")
        if name in ("place", "move", "modify", "remove"):
            if kind not in ("ride", "shop", "staff"):
                verb = "move" if name == "modify" else name
                msg = f"Object to {verb} must be ride, shop, or staff, got {kind}"
                return False, msg, "unknown_kind"
            if name == "place":
                st, body = self._call("POST", kind, args)
            else:
                x, y = args.pop("x"), args.pop("y")
                st, body = self._call("PUT" if name in ("move", "modify") else "DELETE", f"{kind}/{x}/{y}", args)
        elif name in ("remove_path", "remove_water"):
            x, y = args.pop("x"), args.pop("y")
            st, body = self._call("DELETE", f"park/{name.split('_')[1]}/{x}/{y}", args)
        else:
            endpoint = {"survey_guests": "park/survey_guests", "set_research": "park/research",
                        "add_path": "park/path", "add_water": "park/water", "wait": "park/noop"}[name]
            st, body = self._call("POST", endpoint, args)
        msg = str(body.get("message", ""))
        return st == 200, msg, None if st == 200 else reason_of(msg)

    def proceed(self) -> dict:
        st, body = self._call("POST", "park/proceed", {"parkId": self.park_id})
        if st != 200:
            raise GameError(f"the game failed to run the day: {body.get('message')}")
        return body["data"]

    def close(self) -> None:
        if self.park_id is not None:
            try:
                self._call("DELETE", f"park/delete_park/{self.park_id}", None)
            except GameError:
                pass
            self.park_id = None


def _r2(v: float) -> float:
    return round(float(v), 2)


def observation_from_raw(raw: dict, layout: str | None = None) -> dict:
    """The game's raw state -> our state: the agent-facing observation (the game's wrapper's model) plus
    the raw carry-over fields our state keeps (see ``theme_park/state.py``)."""
    st = raw["state"]
    rides, shops, cl = [], [], []
    keep_r = ("subtype", "subclass", "x", "y", "out_of_service", "uptime", "cleanliness", "ticket_price",
              "operating_cost", "revenue_generated", "capacity", "intensity", "excitement", "guests_entertained",
              "times_operated", "cost_per_operation", "avg_wait_time", "avg_guests_per_operation", "breakdown_rate",
              "remaining_repair_time", "unnorm_uptime", "total_guests_queued", "total_wait_time")
    for r in raw["rides"]:
        rides.append({k: r.get(k) for k in keep_r})
        cl.append(r["cleanliness"])
    keep_s = ("subtype", "subclass", "x", "y", "item_price", "item_cost", "operating_cost", "uptime",
              "number_of_restocks", "order_quantity", "inventory", "revenue_generated", "cleanliness", "guests_served",
              "out_of_service", "services_attempted")
    for s in raw["shops"]:
        shops.append({k: s.get(k) for k in keep_s})
        cl.append(s["cleanliness"])
    paths = [{"x": t["x"], "y": t["y"], "cleanliness": t["cleanliness"]} for t in raw["terrain"] if t["type"] == "path"]
    waters = [{"x": t["x"], "y": t["y"]} for t in raw["terrain"] if t["type"] == "water"]
    cl += [t["cleanliness"] for t in paths]
    counts = {k: [0, 0, 0, 0] for k in ("janitor", "mechanic", "specialist")}
    colours = ("yellow", "blue", "green", "red")
    staff = []
    for e in raw["staff"]:
        counts[e["subtype"]][colours.index(e["subclass"])] += 1
        staff.append({"subtype": e["subtype"], "subclass": e["subclass"], "x": e["x"], "y": e["y"],
                      "salary": e["salary"], "operating_cost": e["operating_cost"],
                      "success_metric": e.get("success_metric"), "success_metric_value": e.get("success_metric_value"),
                      "tiles_traversed": e.get("tiles_traversed"), "target": None})
    uptimes = [_r2(r["uptime"]) for r in raw["rides"]]
    gs = raw["guestStats"]
    grid = [[1.0] * 20 for _ in range(20)]
    for t in paths + raw["rides"] + raw["shops"] + [raw["entrance"], raw["exit"]]:
        grid[t["x"]][t["y"]] = float(t.get("cleanliness", 1.0))
    survey = raw.get("guest_survey_results") or {"age_of_results": 0, "list_of_results": []}
    return {
        "step": st["step"], "horizon": st["horizon"], "value": int(round(st["value"])), "money": st["money"],
        "revenue": st["revenue"], "expenses": st["expenses"], "profit": st["revenue"] - st["expenses"],
        "park_rating": _r2(st["park_rating"]),
        "guests": {"total_guests": gs["total_guests"], "avg_money_spent": _r2(gs["avg_money_spent"]),
                   "avg_time_in_park": _r2(gs["avg_steps_taken"]), "avg_rides_visited": _r2(gs["avg_rides_visited"]),
                   "avg_food_shops_visited": _r2(gs["avg_food_shops_visited"]),
                   "avg_drink_shops_visited": _r2(gs["avg_drink_shops_visited"]),
                   "avg_specialty_shops_visited": _r2(gs["avg_specialty_shops_visited"])},
        "guest_survey_results": {"age_of_results": survey.get("age_of_results", 0),
                                 "list_of_results": list(survey.get("list_of_results", []))},
        "rides": {"total_rides": len(rides), "min_uptime": min(uptimes) if uptimes else 1.0,
                  "total_operating_cost": sum(r["operating_cost"] for r in rides),
                  "total_revenue_generated": sum(r["revenue_generated"] for r in rides),
                  "total_excitement": _r2(st["park_excitement"]),
                  "avg_intensity": _r2(sum(_r2(r["intensity"]) for r in rides) / len(rides)) if rides else 0.0,
                  "total_capacity": sum(r["capacity"] for r in rides), "ride_list": rides},
        "shops": {"total_shops": len(shops), "total_revenue_generated": sum(s["revenue_generated"] for s in shops),
                  "total_operating_cost": sum(s["operating_cost"] for s in shops),
                  "min_uptime": min((_r2(s["uptime"]) for s in shops), default=1.0), "shop_list": shops},
        "staff": {"total_janitors": counts["janitor"], "total_mechanics": counts["mechanic"],
                  "total_specialists": counts["specialist"], "total_salary_paid": st["total_salary_paid"],
                  "total_operating_cost": sum(e["operating_cost"] for e in staff), "staff_list": staff},
        "research_speed": st.get("research_speed"), "research_topics": st.get("research_topics"),
        "research_operating_cost": st.get("research_operating_cost"),
        "available_entities": st.get("available_entities"),
        "fast_days_since_last_new_entity": st.get("fast_days_since_last_new_entity"),
        "medium_days_since_last_new_entity": st.get("medium_days_since_last_new_entity"),
        "slow_days_since_last_new_entity": st.get("slow_days_since_last_new_entity"),
        "new_entity_available": st.get("new_entity_available"),
        "entrance": [raw["entrance"]["x"], raw["entrance"]["y"]], "exit": [raw["exit"]["x"], raw["exit"]["y"]],
        "paths": paths, "waters": waters, "min_cleanliness": _r2(min(cl)) if cl else 1.0,
        "hidden": {"parameters": "game", "layout": layout or raw.get("layout"),
                   "prev_guest_happiness": float(st.get("prev_guest_happiness", START_GUEST_HAPPINESS)),
                   "cleanliness": grid, "survey_pending": 0, "parse_error": False},
        "bankrupt": False, "game_over": bool(st["step"] >= st["horizon"]),
    }


__all__ = ["GameServer", "GameClient", "GameError", "http_transport", "observation_from_raw", "find_game_dir",
           "INSTALL_HINT"]
