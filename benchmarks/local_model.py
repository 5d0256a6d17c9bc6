"""Latency of the local llama.cpp client: answer formats, decoding settings, prefix reuse.

``--part formats`` (the default): today's answer format against the compact one, side by side in
one run. Two MountainCar studies with the same 20 random startup trials, one ``LLMSampler`` each
on one shared embedded model, take LLM trials in turn (so load from other work hits both alike):

- ``json``: ``PromptOptions(answer_format="json", reasoning=True)``, the format before the compact
  one (the guided preset's candidates as named JSON objects and a one-sentence reason, the tried
  changes listed);
- ``compact``: the default for a local model (``answer_format="auto"``, ``reasoning=None``): the
  values alone, ``[[0.5,-1],[1,0.2]]``, one decimal under a grammar.

Printed per format, from the trials' records: seconds, calls and generated tokens per LLM trial
(medians; calls as a mean), and the ratios compact / json.

``--part decoding``: each decoding setting against its alternative on the compact prompt, calls
alternating in one run (a ratio of medians): threads 1 vs 2 while another process keeps one
core busy (an objective running beside the sampler), ``n_batch``, llama.cpp's extra buffer types
(``extra_buffers``, the AMX work-around), temperature 0 vs 0.7 (how often the candidates hold a
repeat).

``--part prefix``: what prompt-prefix reuse buys. One :class:`LlamaCppClient` answers prompts
holding 20, 100 and 200 history lines of a 2-parameter table, each call one line longer than the
last, in two orders:

- ``appended``: lines in trial order, the new line at the end. The prompt of call ``k`` is the
  prompt of call ``k - 1`` plus one line, so llama.cpp re-evaluates only the tail.
- ``resorted``: the same lines sorted by ``f`` each call (as a "best last" prompt would do), so
  the new line lands inside the table and everything after it is evaluated again.

``--part budget``: a history over its token budget (``HistoryOptions(max_tokens=...)``), the
sampler's own choice of rows (older rows chosen once per block of 8, the new ones appended)
against choosing afresh on every call (the best and most recent rows first, as before the block
rule), calls alternating between the two on one client so load hits both alike. The ratio is of
the mean warm latency, afresh / blocks.

Every series starts with one untimed priming call (the previous series left another prompt in the
cache). The answer is JSON ``{"a": .., "b": ..}`` (schema-constrained, temperature 0) so that
generation is short and similar across calls; prompt evaluation is what differs. Where the
llama.cpp performance counters are reachable, the number of prompt tokens actually evaluated is
printed too (``eval`` column): that is the direct evidence of prefix reuse.

Run: ``python benchmarks/local_model.py [--part formats] [--llm-trials 6]`` (about 4 minutes on
2 cores), ``--part decoding [--calls 6]`` (about 6 minutes), ``--part prefix [--n-threads 1]
[--calls 4] [--sizes 20 100 200]`` (about 5 minutes), ``--part budget [--calls 8]`` (about 4
minutes). On a machine shared with other work the
ratios are what to read: both sides of each ratio ran in the same minutes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import multiprocessing
import os
import random
import statistics
import time
from typing import Any

import optuna
from optuna.study import StudyDirection

from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler import PromptOptions
from optuna_llm_sampler._history import _admit
from optuna_llm_sampler._history import _priority
from optuna_llm_sampler._history import estimate_tokens
from optuna_llm_sampler._history import HistoryEntry
from optuna_llm_sampler._history import select_history
from optuna_llm_sampler.providers import LlamaCppClient
from optuna_llm_sampler.providers import Message
from optuna_llm_sampler.providers import ScriptedClient
from optuna_llm_sampler.providers._embedded import embedded_model_path
from optuna_llm_sampler.rl import linear_policy_objective
from optuna_llm_sampler.rl import MOUNTAINCAR_TASK


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


FORMATS: dict[str, PromptOptions] = {
    "json": PromptOptions(answer_format="json", reasoning=True),
    "compact": PromptOptions(),
}
N_STARTUP = 20


def _sampler(client: LlamaCppClient | ScriptedClient, prompt: PromptOptions) -> LLMSampler:
    """The sampler ``run`` builds for MountainCar (guided preset), with ``prompt``'s format."""
    options = dict(
        answer_format=prompt.answer_format,
        reasoning=prompt.reasoning,
        expected_optimum=50.0,
        task_description=MOUNTAINCAR_TASK,
        budget=N_STARTUP + 40,
    )
    return LLMSampler(
        model=client, prompt=PromptOptions(**options), n_startup_trials=N_STARTUP, seed=0
    )


def compare_formats(client: LlamaCppClient, llm_trials: int) -> None:
    """Two studies, one per format, taking LLM trials in turn on one model."""
    objective = linear_policy_objective(seed=0)
    studies = {}
    for name, prompt in FORMATS.items():
        study = optuna.create_study(direction="maximize", sampler=_sampler(client, prompt))
        study.optimize(objective, n_trials=N_STARTUP)
        studies[name] = study
    for _ in range(llm_trials):
        for study in studies.values():
            study.optimize(objective, n_trials=1)
    medians: dict[str, tuple[float, float, float]] = {}
    print(f"{'format':<8} {'s/trial':>8} {'calls/trial':>11} {'gen tok/trial':>13} {'best':>7}")
    for name, study in studies.items():
        records = [r for r in map(get_llm_record, study.trials) if r is not None]
        seconds = statistics.median(r.latency_s for r in records)
        calls = statistics.fmean(r.attempts for r in records)
        tokens = statistics.median(r.completion_tokens for r in records)
        medians[name] = (seconds, calls, tokens)
        print(
            f"{name:<8} {seconds:8.1f} {calls:11.2f} {tokens:13.0f} {study.best_value:7.1f}",
            flush=True,
        )
    (s_old, c_old, t_old), (s_new, c_new, t_new) = medians["json"], medians["compact"]
    print(
        f"compact / json: seconds per LLM trial {s_new / s_old:.2f}x, generated tokens per LLM "
        f"trial {t_new / t_old:.2f}x, calls per LLM trial {c_new / c_old:.2f}x "
        f"({llm_trials} LLM trials each, medians)"
    )


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _compact_prompt() -> tuple[list[Message], dict[str, Any] | None]:
    """The compact prompt and schema of trial 20 of a MountainCar study."""
    caught: dict[str, Any] = {}

    def record(messages: Any, schema: Any) -> str:
        caught.update(messages=list(messages), schema=schema)
        return "[[0,0],[0,0],[0,0]]"

    scripted = ScriptedClient(respond=record, supports_schema=True)
    scripted.runs_locally = True  # type: ignore[attr-defined]
    study = optuna.create_study(direction="maximize", sampler=_sampler(scripted, PromptOptions()))
    study.optimize(linear_policy_objective(seed=0), n_trials=N_STARTUP + 1)
    return caught["messages"], caught["schema"]


def compare_decoding(calls: int, settings: list[str] | None = None) -> None:
    """Each setting against its alternative, calls alternating on the compact prompt
    (``settings``: the labels to run, by their first word; all by default)."""
    messages, schema = _compact_prompt()
    pairs: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
        ("threads, one core busy", {"n_threads": 1}, {"n_threads": 2}, True),
        ("threads, idle", {"n_threads": 1}, {"n_threads": 2}, False),
        ("n_batch", {"llama_kwargs": {"n_batch": 512}}, {"llama_kwargs": {"n_batch": 64}}, False),
        ("extra buffers", {"extra_buffers": True}, {"extra_buffers": False}, False),
        ("temperature", {"temperature": 0.7}, {"temperature": 0.0}, False),
    ]
    for label, first, second, busy in pairs:
        if settings and label.split()[0].strip(",") not in settings:
            continue
        clients = [
            LlamaCppClient(**{"n_threads": 1, "temperature": 0.7, "max_tokens": 48, **options})
            for options in (first, second)
        ]
        worker = None
        if busy:
            worker = multiprocessing.Process(target=_busy, args=(3600.0,), daemon=True)
            worker.start()
        try:
            for client in clients:
                client.complete(messages, schema=schema)  # load and prime the prefix
            seconds: list[list[float]] = [[], []]
            answers: list[list[str]] = [[], []]
            for _ in range(calls):
                for k, client in enumerate(clients):
                    completion = client.complete(messages, schema=schema)
                    seconds[k].append(completion.latency_s)
                    answers[k].append(completion.text)
        finally:
            if worker is not None:
                worker.terminate()
            for client in clients:
                client.close()
        a, b = (statistics.median(s) for s in seconds)
        distinct = [len(set(texts)) for texts in answers]
        print(
            f"{label:<24} {_short(first)} {a:6.2f} s | {_short(second)} {b:6.2f} s | "
            f"ratio {a / b:5.2f} | distinct answers {distinct[0]} vs {distinct[1]} of {calls}",
            flush=True,
        )


def _short(options: dict[str, Any]) -> str:
    key, value = next(iter(options.items()))
    if isinstance(value, dict):
        key, value = next(iter(value.items()))
    return f"{key}={value}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part", choices=("formats", "decoding", "prefix", "budget"), default="formats"
    )
    parser.add_argument("--llm-trials", type=int, default=6, help="per format (formats)")
    parser.add_argument("--model-path", default=None, help="a GGUF file (default: embedded)")
    parser.add_argument("--n-threads", type=int, default=None, help="default: the client's")
    parser.add_argument("--calls", type=int, default=4, help="timed calls per series")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 100, 200])
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument(
        "--settings",
        nargs="+",
        choices=("threads", "n_batch", "extra", "temperature"),
        help="decoding: the settings compared (default: all)",
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    if args.model_path is None:
        start = time.perf_counter()
        path = embedded_model_path()
        print(f"embedded model ready at {path} in {time.perf_counter() - start:.2f} s")
    if args.part == "formats":
        client = LlamaCppClient(model_path=args.model_path, n_threads=args.n_threads)
        compare_formats(client, args.llm_trials)
        client.close()
    elif args.part == "decoding":
        compare_decoding(args.calls, args.settings)
    elif args.part == "budget":
        budget_blocks(args)
    else:
        prefix_reuse(args)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def _line(row: tuple[float, float, float]) -> str:
    a, b, f = row
    return f"a: {a:.3f}, b: {b:.2f}, f: {f:.1f}"


def _budgeted(rows: list[tuple[float, float, float]], budget: int, blocks: bool) -> list:
    """The rows a budgeted prompt shows: the sampler's block rule, or chosen afresh."""
    entries = [HistoryEntry(i, {"a": a, "b": b}, f) for i, (a, b, f) in enumerate(rows)]

    def cost(entry: HistoryEntry) -> int:
        return estimate_tokens(_line(rows[entry.number]))

    if blocks:
        chosen = select_history(
            entries, direction=StudyDirection.MAXIMIZE, max_tokens=budget, line_tokens=cost
        )
    else:
        order = _priority(entries, list(range(len(entries))), -1.0, None)
        chosen = [entries[i] for i in sorted(_admit(entries, order, budget, cost))]
    return [rows[entry.number] for entry in chosen]


def _prompt_client(args: argparse.Namespace) -> LlamaCppClient:
    """The client of the prompt-side parts: greedy, short answers, room for long prompts."""
    return LlamaCppClient(
        model_path=args.model_path,
        n_threads=args.n_threads,
        temperature=0.0,
        max_tokens=args.max_tokens,
        n_ctx=8192,
    )


def budget_blocks(args: argparse.Namespace, size: int = 120, budget: int = 1200) -> None:
    """Warm latency with a full history budget: the block rule against choosing afresh."""
    client = _prompt_client(args)
    rows = make_rows(size + args.calls + 1, seed=7)
    timed_call(client, messages(_budgeted(rows[:size], budget, True)))  # load the model
    results: dict[str, list[Call]] = {"blocks": [], "afresh": []}
    for k in range(1, args.calls + 1):
        for mode in ("blocks", "afresh"):
            # Each mode's previous prompt first, so the cache holds what that mode left there.
            timed_call(client, messages(_budgeted(rows[: size + k - 1], budget, mode == "blocks")))
            call = timed_call(
                client, messages(_budgeted(rows[: size + k], budget, mode == "blocks"))
            )
            results[mode].append(call)
            print(
                f"  call {k} {mode:<6} {call.latency_s:6.2f} s, {call.prompt_tokens} prompt "
                f"tokens, {call.evaluated_prompt_tokens} evaluated",
                flush=True,
            )
    blocks = statistics.fmean(c.latency_s for c in results["blocks"])
    afresh = statistics.fmean(c.latency_s for c in results["afresh"])
    print(
        f"{size}+ rows, {budget}-token history: afresh / blocks = {afresh / blocks:.1f}x "
        f"({afresh:.2f} s vs {blocks:.2f} s per warm call)"
    )
    client.close()


def prefix_reuse(args: argparse.Namespace) -> None:
    """Latency of warm calls with the history appended vs re-sorted (see the module's doc)."""

    start = time.perf_counter()
    client = _prompt_client(args)
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
    client.close()


if __name__ == "__main__":
    main()
