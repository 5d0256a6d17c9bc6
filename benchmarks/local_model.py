"""Latency of the local llama.cpp client: cold start, warm calls, what prompt-prefix reuse buys.

One :class:`LlamaCppClient` (one ``Llama`` object, so one KV cache) answers prompts holding 20,
100 and 200 history lines of a 2-parameter table (``a: 1.234, b: -5.67, f: 42.1``), each call one
line longer than the last, in two orders:

- ``appended``: lines in trial order, the new line at the end. The prompt of call ``k`` is the
  prompt of call ``k - 1`` plus one line, so llama.cpp re-evaluates only the tail.
- ``resorted``: the same lines sorted by ``f`` each call (as a "best last" prompt would do), so
  the new line lands inside the table and everything after it is evaluated again.

Every series starts with one untimed priming call (the previous series left another prompt in the
cache). The answer is JSON ``{"a": .., "b": ..}`` (schema-constrained, temperature 0) so that
generation is short and similar across calls; prompt evaluation is what differs. Where the
llama.cpp performance counters are reachable, the number of prompt tokens actually evaluated is
printed too (``eval`` column): that is the direct evidence of prefix reuse.

Run: ``python benchmarks/local_model.py [--n-threads 1] [--calls 4] [--sizes 20 100 200]``
(about 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import os
import random
import statistics
import time
from typing import Any

from optuna_llm_sampler.providers import LlamaCppClient
from optuna_llm_sampler.providers import Message
from optuna_llm_sampler.providers._embedded import embedded_model_path


SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
    "required": ["a", "b"],
}
SYSTEM = (
    "You are an optimizer. Propose the next parameters a and b, both in [-7, 7], to maximize "
    "f. Answer with JSON only."
)


@dataclass
class Call:
    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    evaluated_prompt_tokens: int | None
    prompt_eval_s: float | None
    generation_s: float | None


def make_rows(n: int, seed: int) -> list[tuple[float, float, float]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.uniform(-7, 7), rng.uniform(-7, 7)
        f = 100 - (a + 0.3) ** 2 * 3 - (b - 6) ** 2 + rng.gauss(0, 2)
        rows.append((a, b, f))
    return rows


def messages(rows: list[tuple[float, float, float]]) -> list[Message]:
    table = "\n".join(f"a: {a:.3f}, b: {b:.2f}, f: {f:.1f}" for a, b, f in rows)
    user = f"Evaluated parameters so far:\n{table}\n\nPropose the next a and b."
    return [Message("system", SYSTEM), Message("user", user)]


def _context(client: LlamaCppClient) -> Any:
    """The raw llama.cpp context, for its performance counters (private API; may be None)."""
    try:
        return client._llama._ctx.ctx  # type: ignore[union-attr]
    except AttributeError:
        return None


def timed_call(client: LlamaCppClient, msgs: list[Message]) -> Call:
    import llama_cpp

    ctx = _context(client)
    if ctx is not None:
        llama_cpp.llama_perf_context_reset(ctx)
    completion = client.complete(msgs, schema=SCHEMA)
    evaluated = prompt_eval = generation = None
    ctx = _context(client)
    if ctx is not None:
        perf = llama_cpp.llama_perf_context(ctx)
        # Prompt tokens decoded in batches, plus a 1-token tail decoded alone (counted as eval).
        evaluated = int(perf.n_p_eval)
        prompt_eval = perf.t_p_eval_ms / 1000
        generation = perf.t_eval_ms / 1000
    return Call(
        latency_s=completion.latency_s,
        prompt_tokens=completion.prompt_tokens or 0,
        completion_tokens=completion.completion_tokens or 0,
        evaluated_prompt_tokens=evaluated,
        prompt_eval_s=prompt_eval,
        generation_s=generation,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", default=None, help="a GGUF file (default: embedded)")
    parser.add_argument("--n-threads", type=int, default=None, help="default: the client's")
    parser.add_argument("--calls", type=int, default=4, help="timed calls per series")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 100, 200])
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()

    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    if args.model_path is None:
        start = time.perf_counter()
        path = embedded_model_path()
        print(f"embedded model ready at {path} in {time.perf_counter() - start:.2f} s")

    start = time.perf_counter()
    client = LlamaCppClient(
        model_path=args.model_path,
        n_threads=args.n_threads,
        temperature=0.0,
        max_tokens=args.max_tokens,
        n_ctx=8192,
    )
    construct_s = time.perf_counter() - start
    first_rows = make_rows(args.sizes[0], seed=0)
    cold = timed_call(client, messages(first_rows))
    print(
        f"cold: construct {construct_s:.2f} s + load and first call {cold.latency_s:.2f} s "
        f"({cold.prompt_tokens} prompt tokens, {cold.completion_tokens} generated); "
        f"model {client.model}, n_threads={client.n_threads}"
    )

    results: dict[tuple[int, str], list[Call]] = {}
    for size in args.sizes:
        rows = make_rows(size + args.calls, seed=size)
        for mode in ("appended", "resorted"):

            def prompt(k: int, mode: str = mode, rows: list = rows, size: int = size) -> list:
                shown = rows[: size + k]
                if mode == "resorted":
                    shown = sorted(shown, key=lambda row: row[2])
                return messages(shown)

            timed_call(client, prompt(0))  # priming: another prompt is in the cache
            calls = [timed_call(client, prompt(k)) for k in range(1, args.calls + 1)]
            results[size, mode] = calls
            latencies = ", ".join(f"{c.latency_s:.2f}" for c in calls)
            print(f"  {size:>4} lines {mode:<9} calls: {latencies} s", flush=True)

    print()
    header = (
        f"{'lines':>5} {'order':<9} {'prompt tok':>10} {'eval tok':>8} {'gen tok':>7} "
        f"{'warm s (mean)':>13} {'median':>7} {'prompt tok/s':>12} {'gen tok/s':>9}"
    )
    print(header)
    print("-" * len(header))
    for (size, mode), calls in results.items():
        mean = statistics.fmean(c.latency_s for c in calls)
        median = statistics.median(c.latency_s for c in calls)
        prompt_tokens = statistics.fmean(c.prompt_tokens for c in calls)
        generated = statistics.fmean(c.completion_tokens for c in calls)
        evaluated = (
            f"{statistics.fmean(c.evaluated_prompt_tokens or 0 for c in calls):8.0f}"
            if calls[0].evaluated_prompt_tokens is not None
            else f"{'n/a':>8}"
        )
        if calls[0].generation_s is not None:
            generation = sum(c.generation_s or 0.0 for c in calls)
            gen_rate = sum(c.completion_tokens for c in calls) / max(generation, 1e-9)
            prompt_time = sum(c.prompt_eval_s or 0.0 for c in calls)
            prompt_evaluated = sum(c.evaluated_prompt_tokens or 0 for c in calls)
            prompt_rate = f"{prompt_evaluated / max(prompt_time, 1e-9):12.0f}"
            gen_text = f"{gen_rate:9.1f}"
        else:
            prompt_rate, gen_text = f"{'n/a':>12}", f"{'n/a':>9}"
        print(
            f"{size:>5} {mode:<9} {prompt_tokens:10.0f} {evaluated} {generated:7.1f} "
            f"{mean:13.2f} {median:7.2f} {prompt_rate} {gen_text}"
        )
    print()
    for size in args.sizes:
        appended = statistics.fmean(c.latency_s for c in results[size, "appended"])
        resorted = statistics.fmean(c.latency_s for c in results[size, "resorted"])
        print(
            f"{size:>4} lines: resorted / appended = {resorted / appended:.1f}x "
            f"({resorted:.2f} s vs {appended:.2f} s per warm call)"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    client.close()


if __name__ == "__main__":
    main()
