#!/usr/bin/env python
"""Run every notebook of the bundle in order with papermill and regenerate all tables and figures.

    python run_all.py                       # quick profile, bundled local LLM
    python run_all.py --profile full        # the paper's sizes
    python run_all.py --only 03 --force     # rerun one stage
    python run_all.py --from 04             # rerun from a stage on
    python run_all.py --llm openai:gpt-4.1-mini
    python run_all.py --list                # show the stages and whether they are up to date

Executed notebooks go to runs/<profile>/ (ignored by git), never over the sources.  A stage is skipped
when its notebook, parameters, LLM, library code and the stages it needs are unchanged since its last
successful run and its outputs still exist (--force reruns it).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "lib"))  # works before the editable install too

# CASSANDRA_STAGES points at another stage table (the tests use it); notebooks sit beside it.
STAGES_FILE = Path(os.environ.get("CASSANDRA_STAGES", ROOT / "notebooks" / "stages.toml"))


class StageError(RuntimeError):
    pass


# -- stage table ----------------------------------------------------------

def load_stages(path: Path = STAGES_FILE) -> list[dict]:
    with open(path, "rb") as f:
        table = tomllib.load(f)
    stages = table.get("stage", [])
    names = set()
    for st in stages:
        for key in ("name", "notebook"):
            if key not in st:
                raise StageError(f"{path}: a [[stage]] entry lacks '{key}': {st}")
        if st["name"] in names:
            raise StageError(f"{path}: stage {st['name']!r} is listed twice")
        names.add(st["name"])
        for dep in st.get("needs", []):
            if dep not in names:
                raise StageError(f"{path}: stage {st['name']!r} needs {dep!r}, which is not listed before it")
        nb = path.parent / st["notebook"]
        st["path"] = nb
        if not nb.exists():
            raise StageError(f"{path}: stage {st['name']!r} points at missing notebook {nb}")
    return stages


def for_profile(stages: list[dict], profile: str) -> list[dict]:
    """The stages a profile runs (a stage may list ``profiles = ["full"]`` to stay out of quick runs)."""
    return [s for s in stages if profile in s.get("profiles", ["quick", "full"])]


def match_stage(stages: list[dict], key: str) -> dict:
    """A stage by full name or unique prefix ("03" -> "03_dag_sampling_search")."""
    exact = [s for s in stages if s["name"] == key]
    if exact:
        return exact[0]
    hits = [s for s in stages if s["name"].startswith(key)]
    if len(hits) == 1:
        return hits[0]
    names = ", ".join(s["name"] for s in stages)
    if not hits:
        raise StageError(f"no stage matches {key!r}; stages: {names}")
    raise StageError(f"{key!r} matches several stages ({', '.join(s['name'] for s in hits)}); be more specific")


def match_stages(stages: list[dict], key: str) -> list[dict]:
    """Every stage a key names: the exact name, else all stages that start with it."""
    exact = [s for s in stages if s["name"] == key]
    hits = exact or [s for s in stages if s["name"].startswith(key)]
    if not hits:
        raise StageError(f"no stage matches {key!r}; stages: {', '.join(s['name'] for s in stages)}")
    return hits


def select(stages: list[dict], only: list[str] | None, start: str | None) -> list[dict]:
    """``--only`` keys select every stage they match; ``--from`` starts at the first match."""
    if only:
        wanted = {s["name"] for k in only for s in match_stages(stages, k)}
        return [s for s in stages if s["name"] in wanted]
    if start:
        first = match_stages(stages, start)[0]["name"]
        idx = [s["name"] for s in stages].index(first)
        return stages[idx:]
    return list(stages)


def stage_parameters(stage: dict, profile: str, seed: int, llm: str) -> dict:
    params = {"profile": profile, "seed": seed, "llm": llm}
    params.update(stage.get("common", {}))
    params.update(stage.get(profile, {}))
    params.setdefault("env_name", "coffee_shop")
    return params


# -- fingerprints -----------------------------------------------------------

def _hash_files(paths) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(ROOT)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def library_hash() -> str:
    return _hash_files([p for p in (ROOT / "lib" / "cassandra_wm").rglob("*") if p.is_file()
                        and p.suffix in (".py", ".md", ".json", ".txt") and "__pycache__" not in p.parts])


def notebook_hash(path: Path) -> str:
    """Hash of the cells' sources only, so saving outputs in JupyterLab does not invalidate a stage."""
    nb = json.loads(path.read_text())
    h = hashlib.sha256()
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        h.update(cell.get("cell_type", "").encode())
        h.update(("".join(src) if isinstance(src, list) else src).encode())
    return h.hexdigest()


def fingerprint(stage: dict, params: dict, lib_hash: str, upstream: dict[str, str]) -> str:
    payload = {
        "stage": stage["name"],
        "notebook": notebook_hash(stage["path"]),
        "params": params,
        "lib": lib_hash,
        "needs": {d: upstream.get(d, "missing") for d in stage.get("needs", [])},
        "cache_mode": os.environ.get("CASSANDRA_LLM_CACHE", "record"),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def outputs_present(stage: dict, params: dict, out_root: Path) -> bool:
    for pattern in stage.get("outputs", []):
        rel = pattern.format(profile=params["profile"], env=params["env_name"])
        if not (out_root / rel).exists():
            return False
    return True


# -- state ------------------------------------------------------------------

def load_state(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        print(f"warning: {path} is unreadable; every stage will run", file=sys.stderr)
        return {}


def save_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, path)


# -- execution ----------------------------------------------------------------

def describe_failure(exc: Exception, stage: dict, out_nb: Path) -> str:
    """One readable paragraph: which notebook, which cell, which error, where the executed copy is."""
    cell = getattr(exc, "exec_count", None)
    cell_index = getattr(exc, "cell_index", None)
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    source = getattr(exc, "source", "") or ""
    first = next((ln for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    where = f"cell #{cell_index}" if cell_index is not None else "a cell"
    if cell is not None:
        where += f" (execution count {cell})"
    lines = [f"stage {stage['name']} failed in {stage['path']}, {where}:",
             f"  {ename}: {evalue}"]
    if first:
        lines.append(f"  cell starts with: {first.strip()[:100]}")
    lines.append(f"  executed notebook with the full traceback: {out_nb}")
    return "\n".join(lines)


def run_stage(stage: dict, params: dict, out_nb: Path) -> None:
    import papermill as pm

    out_nb.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(
        str(stage["path"]), str(out_nb), parameters=params,
        kernel_name="python3", cwd=str(stage["path"].parent), progress_bar=False, log_output=False,
        request_save_on_cell_execute=True,
    )


def _markers(profile: str) -> tuple[str, str]:
    return f"<!-- results:{profile}:start -->", f"<!-- results:{profile}:end -->"


def results_markdown(profile: str, stages: list[dict], summary: list[dict], llm_name: str, seed: int,
                     out_root: Path) -> str:
    """The README block of one profile: stage timings plus each stage's headline tables and figures.

    Stages name their headline outputs in stages.toml (``results`` = table names, ``figures`` = PNG
    names, both relative to ``figures/<profile>/<env>/``)."""
    lines = [f"Last `python run_all.py --profile {profile} --seed {seed}`: "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, LLM **{llm_name}**.", "",
             "| stage | status | seconds |", "|---|---|---|"]
    for row in summary:
        lines.append(f"| {row['stage']} | {row['status']} | {row['seconds']:.1f} |")
    lines.append("")
    for st in stages:
        env = stage_parameters(st, profile, seed, "")["env_name"]
        fig_dir = out_root / "figures" / profile / env
        for name in st.get("results", []):
            md = fig_dir / f"{name}.md"
            if md.exists():
                lines += [f"**{st['name']}: `{md.relative_to(out_root)}`**", "", md.read_text().strip(), ""]
        for name in st.get("figures", []):
            png = fig_dir / f"{name}.png"
            if png.exists():
                lines += [f"![{st['name']}: {name}]({png.relative_to(out_root)})", ""]
    return "\n".join(lines)


def update_readme(profile: str, block: str, out_root: Path) -> bool:
    """Replace the profile's results block in README.md (only for runs that write into the repository)."""
    readme = ROOT / "README.md"
    if out_root.resolve() != ROOT.resolve() or not readme.exists():
        return False
    text = readme.read_text()
    start, end = _markers(profile)
    if start not in text or end not in text:
        print(f"note: README.md has no {start} ... {end} block; results not copied there", file=sys.stderr)
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    tmp = readme.with_suffix(".md.tmp")
    tmp.write_text(head + start + "\n" + block + "\n" + end + tail)
    os.replace(tmp, readme)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=["quick", "full"], default="quick",
                    help="quick: small sizes, minutes on 2 cores (default); full: the paper's sizes")
    ap.add_argument("--only", nargs="+", metavar="STAGE", help="run only these stages (name or prefix)")
    ap.add_argument("--from", dest="start", metavar="STAGE", help="run this stage and all after it")
    ap.add_argument("--force", action="store_true", help="rerun stages even when they are up to date")
    ap.add_argument("--llm", default=os.environ.get("CASSANDRA_LLM", "local"),
                    help="local (default: SmolLM2-135M-Instruct via llama.cpp), openai:MODEL, "
                         "or openai:MODEL@BASE_URL for any OpenAI-compatible server")
    ap.add_argument("--seed", type=int, default=0, help="master seed passed to every notebook (default 0)")
    ap.add_argument("--list", action="store_true", help="list the stages and their status, run nothing")
    ap.add_argument("--update-readme", action="store_true",
                    help="rewrite the README results of this profile from its last runs, run nothing")
    args = ap.parse_args(argv)
    if args.only and args.start:
        ap.error("use either --only or --from, not both")

    from cassandra_wm import paths
    from cassandra_wm.llm import LLMError, describe_llm, parse_llm_spec

    try:
        parse_llm_spec(args.llm)
        llm_name = describe_llm(args.llm)
    except (ValueError, LLMError) as e:
        print(f"error: --llm {args.llm!r}: {e}", file=sys.stderr)
        return 2
    try:
        stages = for_profile(load_stages(), args.profile)
        chosen = select(stages, args.only, args.start)
    except StageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    out_root = paths.OUT
    run_dir = paths.RUNS / args.profile
    state_path = run_dir / "state.json"
    state = load_state(state_path)
    lib_hash = library_hash()
    upstream = {name: rec.get("fingerprint", "missing") for name, rec in state.items()}

    plan = []
    for st in stages:
        params = stage_parameters(st, args.profile, args.seed, args.llm)
        fp = fingerprint(st, params, lib_hash, upstream)
        fresh = state.get(st["name"], {}).get("fingerprint") == fp and outputs_present(st, params, out_root)
        if st in chosen:
            plan.append((st, params, fp, fresh and not args.force))
        upstream[st["name"]] = fp  # later stages see what this one will be after the run

    if args.update_readme:
        block = results_markdown(args.profile, stages, _merge_summary(state, [], stages), llm_name, args.seed,
                                 out_root)
        return 0 if update_readme(args.profile, block, out_root) else 1

    if args.list:
        for st, _params, _fp, skip in plan:
            print(f"{st['name']:36s} {'up to date' if skip else 'will run'}")
        return 0

    if parse_llm_spec(args.llm).get("kind") == "openai":
        from cassandra_wm.llm import get_chat
        try:  # builds the client only (no request): catches a missing key before any stage runs
            get_chat(args.llm, stage="run_all", cache="off")
        except LLMError as e:
            print(f"error: --llm {args.llm!r}: {e}", file=sys.stderr)
            return 2

    print(f"profile {args.profile} · seed {args.seed} · LLM {llm_name} · outputs under {out_root}")
    needs_llm = any(st.get("uses_llm", False) and not skip for st, _p, _f, skip in plan)
    server = None
    replay = os.environ.get("CASSANDRA_LLM_CACHE", "record").strip().lower() == "replay"
    if (needs_llm and not replay and parse_llm_spec(args.llm).get("kind") == "local"
            and not os.environ.get("CASSANDRA_LOCAL_LLM_URL")):
        from cassandra_wm.llm.local import LocalServer
        t0 = time.time()
        server = LocalServer()
        server.start()
        os.environ["CASSANDRA_LOCAL_LLM_URL"] = server.base_url
        print(f"started the local LLM server at {server.base_url} in {time.time() - t0:.1f}s")

    summary: list[dict] = []
    status = 0
    try:
        from tqdm.auto import tqdm
        bar = tqdm(plan, desc="stages", unit="stage", file=sys.stdout, dynamic_ncols=True)
        for st, params, fp, skip in bar:
            bar.set_postfix_str(st["name"])
            if skip:
                summary.append({"stage": st["name"], "status": "up to date", "seconds": 0.0})
                tqdm.write(f"· {st['name']}: up to date (use --force to rerun)")
                continue
            out_nb = run_dir / f"{st['name']}.ipynb"
            tqdm.write(f"▶ {st['name']} …")
            t0 = time.time()
            try:
                run_stage(st, params, out_nb)
            except KeyboardInterrupt:
                summary.append({"stage": st["name"], "status": "interrupted", "seconds": time.time() - t0})
                tqdm.write(f"interrupted during {st['name']}; earlier stages' outputs are kept")
                status = 130
                break
            except Exception as e:  # papermill raises PapermillExecutionError for a failing cell
                summary.append({"stage": st["name"], "status": "FAILED", "seconds": time.time() - t0})
                print("\n" + describe_failure(e, st, out_nb), file=sys.stderr)
                state.pop(st["name"], None)
                save_state(state_path, state)
                status = 1
                break
            secs = time.time() - t0
            state[st["name"]] = {"fingerprint": fp, "seconds": round(secs, 2), "llm": llm_name,
                                 "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                 "executed_notebook": str(out_nb)}
            save_state(state_path, state)
            summary.append({"stage": st["name"], "status": "ran", "seconds": secs})
            tqdm.write(f"✓ {st['name']} in {secs:.1f}s")
    finally:
        if server is not None:
            server.stop()
            os.environ.pop("CASSANDRA_LOCAL_LLM_URL", None)

    print("\n" + f"{'stage':36s} {'status':12s} {'seconds':>8s}")
    for row in summary:
        print(f"{row['stage']:36s} {row['status']:12s} {row['seconds']:8.1f}")
    total = sum(r["seconds"] for r in summary)
    print(f"{'total':36s} {'':12s} {total:8.1f}")
    print(f"LLM used: {llm_name}")
    (run_dir / "summary.json").write_text(json.dumps({"llm": llm_name, "profile": args.profile,
                                                      "seed": args.seed, "stages": summary}, indent=1))
    if status == 0:
        block = results_markdown(args.profile, stages, _merge_summary(state, summary, stages), llm_name,
                                 args.seed, out_root)
        if update_readme(args.profile, block, out_root):
            print(f"README.md results ({args.profile}) updated")
    return status


def _merge_summary(state: dict, summary: list[dict], stages: list[dict]) -> list[dict]:
    """Timings of every stage: this run's where it ran, the last successful run's otherwise."""
    ran = {r["stage"]: r for r in summary if r["status"] == "ran"}
    rows = []
    for st in stages:
        if st["name"] in ran:
            rows.append(ran[st["name"]])
        elif st["name"] in state:
            rows.append({"stage": st["name"], "status": f"ran {state[st['name']]['finished'][:10]}",
                         "seconds": float(state[st["name"]].get("seconds", 0.0))})
    return rows


if __name__ == "__main__":
    sys.exit(main())
