"""Speed of the bundled local model (SmolLM2-135M-Instruct on llama.cpp) through the OpenAI path.

Prints: server start time, generation speed (with and without log-probabilities), prompt
evaluation speed (whole prompt, and with a shared prefix re-used), and the time of one structured
call with a ~600-token prompt.

    .venv/bin/python benchmarks/llm_local.py [--threads N] [--repeats 3]

Times are medians over ``--repeats`` runs; on a shared machine they move with its load, so the
script also prints the server's CPU seconds per call when psutil is available.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for the server (default: automatic)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from cassandra_wm.llm import LocalServer, OpenAIChat

    try:
        import psutil
    except ImportError:  # pragma: no cover
        psutil = None

    t0 = time.perf_counter()
    with LocalServer(n_threads=args.threads) as srv:
        start = time.perf_counter() - t0
        print(f"model: {srv.model}")
        print(f"threads: {srv.n_threads}; load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"server start (spawn to /v1/models answering): {start:.2f} s")
        proc = psutil.Process(srv.process.pid) if psutil else None
        chat = OpenAIChat(srv.model, srv.base_url, name=srv.model, schema_mode="json_object")

        def timed(messages, **kw):
            walls, cpus, reply = [], [], None
            for _ in range(args.repeats):
                c0 = sum(proc.cpu_times()[:2]) if proc else 0.0
                t = time.perf_counter()
                reply = chat.chat(messages, temperature=0.0, seed=0, **kw)
                walls.append(time.perf_counter() - t)
                cpus.append(sum(proc.cpu_times()[:2]) - c0 if proc else float("nan"))
            return statistics.median(walls), statistics.median(cpus), reply

        short = [{"role": "user", "content": "Write a long story about a busy coffee shop."}]
        for lp in (False, True):
            wall, cpu, r = timed(short, max_tokens=128, logprobs=lp, top_logprobs=5 if lp else 0)
            n = r.usage["completion_tokens"]
            print(f"generation, {n} tokens, logprobs={lp}: {wall:.2f} s wall ({n / wall:.0f} tokens/s), "
                  f"{cpu:.2f} s server CPU")

        manual = ("The shop sells espresso, latte and tea. Variables: queue length, number of baristas, "
                  "machine temperature, milk stock, bean stock, customer satisfaction, daily revenue. ") * 14
        schema = {"type": "object", "properties": {"thinking": {"type": "string"}, "answer": {"type": "boolean"}},
                  "required": ["thinking", "answer"]}
        counter = iter(range(10**6))

        def prompt(question: str, cold: bool) -> list[dict]:
            # a cold prompt starts with a fresh number, so no prefix of it was evaluated before
            head = f"Shop {next(counter)}. " if cold else ""
            return [{"role": "system", "content": "You are an expert on causal models of small businesses."},
                    {"role": "user", "content": head + manual + question + " Think briefly, then answer in JSON."}]

        for cold in (True, False):
            walls, cpus = [], []
            for i in range(args.repeats):
                c0 = sum(proc.cpu_times()[:2]) if proc else 0.0
                t = time.perf_counter()
                r = chat.chat(prompt(f"Does variable {i} depend on the number of baristas?", cold),
                              max_tokens=1, temperature=0.0, seed=0)
                walls.append(time.perf_counter() - t)
                cpus.append(sum(proc.cpu_times()[:2]) - c0 if proc else float("nan"))
            p = r.usage["prompt_tokens"]
            wall = statistics.median(walls)
            what = "whole prompt evaluated" if cold else "shared manual prefix re-used"
            print(f"prompt evaluation, {p} tokens, {what}: {wall:.2f} s wall ({p / wall:.0f} tokens/s), "
                  f"{statistics.median(cpus):.2f} s server CPU")

        for cold in (True, False):
            walls, cpus = [], []
            for i in range(args.repeats):
                c0 = sum(proc.cpu_times()[:2]) if proc else 0.0
                t = time.perf_counter()
                r = chat.chat(prompt("Does the queue length depend on the number of baristas?", cold),
                              schema=schema, logprobs=True, top_logprobs=5, max_tokens=64, temperature=0.0, seed=0)
                walls.append(time.perf_counter() - t)
                cpus.append(sum(proc.cpu_times()[:2]) - c0 if proc else float("nan"))
            what = "cold prompt" if cold else "same request again"
            print(f"structured call ({what}), {r.usage['prompt_tokens']} prompt + {r.usage['completion_tokens']} "
                  f"completion tokens, logprobs top 5: {statistics.median(walls):.2f} s wall, "
                  f"{statistics.median(cpus):.2f} s server CPU; parsed={r.parsed!r}"
                  f"{'' if r.parse_error is None else ' (' + r.parse_error + ')'}")


if __name__ == "__main__":
    main()
