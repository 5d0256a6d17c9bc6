"""Files of a comparison: ``summary.md``, ``summary.csv``, ``paired.csv``, ``studies.csv``,
``best_so_far.png``."""

from __future__ import annotations

from collections.abc import Sequence
import csv
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from optuna_llm_sampler.app._compare_stats import best_so_far_matrix
from optuna_llm_sampler.app._compare_stats import checkpoints
from optuna_llm_sampler.app._compare_stats import Direction
from optuna_llm_sampler.app._compare_stats import PairedStats
from optuna_llm_sampler.app._compare_stats import SamplerStats
from optuna_llm_sampler.app._compare_stats import Spread
from optuna_llm_sampler.app._compare_stats import StudyStats
from optuna_llm_sampler.app._compare_worker import dashboard_command
from optuna_llm_sampler.app._install import install_hint
from optuna_llm_sampler.app._named_samplers import CONTROL


_SPREAD_FIELDS = ("median", "q1", "q3", "min", "max")


def _spread_columns(prefix: str, spread: Spread | None) -> dict[str, Any]:
    if spread is None:
        return {f"{prefix}_{name}": "" for name in _SPREAD_FIELDS}
    return {f"{prefix}_{name}": _number(getattr(spread, name)) for name in _SPREAD_FIELDS}


def _interval_columns(prefix: str, interval: tuple[float, float] | None) -> dict[str, Any]:
    low, high = interval if interval is not None else (None, None)
    return {f"{prefix}_ci_low": _number(low), f"{prefix}_ci_high": _number(high)}


def _number(value: float | int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value) if isinstance(value, float) else str(value)


def write_summary_csv(
    path: Path, rows: Sequence[SamplerStats], *, n_trials: int, threshold: float | None
) -> Path:
    """One row per sampler: ``*_median``, ``*_q1``, ``*_q3``, ``*_min``, ``*_max`` of each number
    over seeds, and ``*_ci_low``, ``*_ci_high``: the bootstrap 95% interval of the median, for
    the trials to the threshold and the re-scored best. Trials to the threshold are ``inf`` for
    seeds that ran all their trials without reaching it; ``seeds_failed`` counts the seeds whose
    study stopped on an error, ``seeds_unfinished`` those left out of the trials to the threshold
    (failed or short), and ``seeds_below_fail`` those whose re-scored best fails the failure
    line."""
    records: list[dict[str, Any]] = []
    for row in rows:
        record: dict[str, Any] = {
            "sampler": row.sampler,
            "n_seeds": len(row.seeds),
            "seeds": " ".join(str(s) for s in row.seeds),
            "n_trials": n_trials,
        }
        for n in checkpoints(n_trials):
            record.update(_spread_columns(f"best_at_{n}", row.best_at.get(n)))
        record["threshold"] = _number(threshold)
        record["seeds_reaching_threshold"] = row.reached if threshold is not None else ""
        record["seeds_failed"] = row.failed
        record["seeds_unfinished"] = row.unfinished if threshold is not None else ""
        record.update(_spread_columns("trials_to_threshold", row.trials_to_threshold))
        record.update(_interval_columns("trials_to_threshold", row.trials_interval))
        record.update(_spread_columns("rescored_best", row.rescored))
        record.update(_interval_columns("rescored_best", row.rescored_interval))
        record["seeds_below_fail"] = _number(row.below_fail)
        record.update(_spread_columns("sampler_ms_per_trial", row.sampler_ms))
        record.update(_spread_columns("objective_ms_per_trial", row.objective_ms))
        for key in ("calls", "tokens", "fallbacks", "latency_s_per_call"):
            record.update(_spread_columns(f"llm_{key}", row.llm.get(key) if row.llm else None))
        records.append(record)
    _write_csv(path, records)
    return path


def write_studies_csv(
    path: Path, studies: Sequence[StudyStats], *, n_trials: int, threshold: float | None = None
) -> Path:
    """One row per study (sampler and seed): the per-seed numbers behind the summary.

    ``status`` is ``complete``, ``failed`` (``error`` says why) or ``incomplete``;
    ``trials_to_threshold`` is ``inf`` for a complete study that never reached the threshold and
    empty when that is not known (a failed or incomplete one below it, or no threshold).
    """
    records: list[dict[str, Any]] = []
    for s in studies:
        record: dict[str, Any] = {
            "sampler": s.sampler,
            "seed": s.seed,
            "study_name": s.study_name,
            "status": s.status,
            "error": s.error or "",
            "n_complete": s.n_complete,
        }
        for n in checkpoints(n_trials):
            record[f"best_at_{n}"] = _number(s.best_at(n))
        to_threshold: float | None = s.trials_to_threshold
        if to_threshold is None and s.finished and threshold is not None:
            to_threshold = math.inf
        record["trials_to_threshold"] = _number(to_threshold)
        record["rescored_best"] = _number(s.rescored)
        record["sampler_ms_per_trial"] = _number(
            None if s.sampler_s is None else 1000 * s.sampler_s
        )
        record["objective_ms_per_trial"] = _number(
            None if s.objective_s is None else 1000 * s.objective_s
        )
        record["llm_calls"] = s.usage.calls
        record["llm_tokens"] = s.usage.total_tokens
        record["llm_fallbacks"] = s.usage.fallbacks
        record["llm_latency_s"] = _number(round(s.usage.latency_s, 3))
        records.append(record)
    _write_csv(path, records)
    return path


def _write_csv(path: Path, records: Sequence[dict[str, Any]]) -> None:
    fields: list[str] = []
    for record in records:
        fields.extend(k for k in record if k not in fields)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(records)


def summary_table(
    rows: Sequence[SamplerStats],
    *,
    n_trials: int,
    threshold: float | None,
    fail_below: float | None = None,
    direction: Direction = "maximize",
) -> str:
    """The main table in Markdown: one row per sampler, ``median [q1, q3]`` over seeds, and the
    bootstrap 95% interval of the median for the trials to the threshold and the re-scored
    best."""
    marks = checkpoints(n_trials)
    header = ["sampler", "seeds", *(f"best @{n}" for n in marks)]
    if threshold is not None:
        header += [f"trials to {_threshold_text(threshold)}", "95% CI", "seeds reaching it"]
    rescored = any(r.rescored is not None for r in rows)
    if rescored:
        header += ["best re-scored", "95% CI"]
    if rescored and fail_below is not None:
        worse = "<" if direction == "maximize" else ">"
        header.append(f"seeds {worse} {_threshold_text(fail_below)}")
    header.append("sampler ms/trial")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r.sampler, str(len(r.seeds)), *(r.best_at[n].format(1) for n in marks)]
        if threshold is not None:
            failed = f" ({r.failed} failed)" if r.failed else ""
            spread = r.trials_to_threshold
            cells += [
                spread.format(0, above=n_trials) if spread is not None else "–",
                _interval_text(r.trials_interval, 0, above=n_trials),
                f"{r.reached}/{len(r.seeds)}{failed}",
            ]
        if rescored:
            cells.append(r.rescored.format(1) if r.rescored is not None else "–")
            cells.append(_interval_text(r.rescored_interval, 1))
        if rescored and fail_below is not None:
            counted = r.rescored.n if r.rescored is not None else 0
            cells.append(f"{r.below_fail}/{counted}" if r.below_fail is not None else "–")
        cells.append(r.sampler_ms.format(1))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _interval_text(
    interval: tuple[float, float] | None, digits: int, *, above: int | None = None
) -> str:
    """``"[low, high]"``, values beyond ``above`` as ``">above"``; ``"–"`` without one."""
    if interval is None or any(math.isnan(v) for v in interval):
        return "–"
    low, high = (_value_text(v, digits, above=above) for v in interval)
    return f"[{low}, {high}]"


def _value_text(value: float, digits: int, *, above: int | None = None) -> str:
    """``value`` with ``digits`` decimals (no ``-0.0``), beyond ``above`` as ``">above"``."""
    if math.isnan(value):
        return "–"
    if above is not None and value > above:
        return f">{above}"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


_METRIC_NAMES = {"rescored_best": "best re-scored", "trials_to_threshold": "trials to threshold"}


def paired_table(
    paired: Sequence[PairedStats], *, direction: Direction = "maximize"
) -> str | None:
    """The paired section in Markdown: per pair and metric, the median of the per-seed
    differences, its bootstrap 95% interval, the seeds where each side won, the signed-rank
    p-value; ``None`` without pairs."""
    if not paired:
        return None
    lines = [
        "| sampler | against | metric | seeds | median difference | 95% CI | higher / lower "
        "| signed-rank p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in paired:
        digits = 0 if p.metric == "trials_to_threshold" else 1
        cells = [
            p.sampler,
            p.other,
            _METRIC_NAMES.get(p.metric, p.metric),
            str(len(p.seeds)),
            _value_text(p.median, digits),
            _interval_text((p.low, p.high), digits),
            f"{p.higher} / {p.lower}",
            "–" if math.isnan(p.p_value) else f"{p.p_value:.3g}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_paired_csv(path: Path, paired: Sequence[PairedStats]) -> Path:
    """One row per pair and metric: ``sampler``, ``other``, ``metric``, ``n_seeds``, ``seeds``,
    ``median_difference`` (``sampler - other``), ``ci_low``, ``ci_high``, ``higher``,
    ``lower``, ``p_value`` (signed-rank, two-sided)."""
    records = [
        {
            "sampler": p.sampler,
            "other": p.other,
            "metric": p.metric,
            "n_seeds": len(p.seeds),
            "seeds": " ".join(str(s) for s in p.seeds),
            "median_difference": _number(p.median),
            "ci_low": _number(p.low),
            "ci_high": _number(p.high),
            "higher": p.higher,
            "lower": p.lower,
            "p_value": _number(p.p_value),
        }
        for p in paired
    ]
    _write_csv(path, records)
    return path


def llm_table(rows: Sequence[SamplerStats]) -> str | None:
    """What the LLM samplers cost per study, or ``None`` when no LLM sampler ran."""
    llm_rows = [r for r in rows if r.llm]
    if not llm_rows:
        return None
    lines = [
        "| sampler | calls | tokens | fallbacks | latency s/call |",
        "|---|---|---|---|---|",
    ]
    for r in llm_rows:
        llm = r.llm or {}
        cells = [
            r.sampler,
            llm["calls"].format(0),
            llm["tokens"].format(0),
            llm["fallbacks"].format(0),
            llm["latency_s_per_call"].format(2),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _threshold_text(threshold: float) -> str:
    return f"{threshold:g}"


def write_summary_md(
    path: Path,
    rows: Sequence[SamplerStats],
    studies: Sequence[StudyStats],
    *,
    title: str,
    storage: str,
    n_trials: int,
    threshold: float | None,
    direction: Direction,
    plot: str | None,
    errors: Sequence[str] = (),
    paired: Sequence[PairedStats] = (),
    fail_below: float | None = None,
    versions: str | None = None,
) -> Path:
    """The summary in Markdown: setup, the main table, the paired section, the LLM's cost, how
    to read them."""
    seeds = sorted({s.seed for s in studies})
    counts = sorted({len(r.seeds) for r in rows})
    per_sampler = (
        f"{len(seeds)} seeds ({_seed_ranges(seeds)})"
        if len(counts) == 1
        else f"{len(seeds)} seeds ({_seed_ranges(seeds)}; a sampler that asks a model runs on "
        "the first of them, see the seeds column)"
    )
    short = [s for s in studies if s.n_complete < n_trials or s.error is not None]
    better = "≥" if direction == "maximize" else "≤"
    parts = [
        f"# Sampler comparison: {title}",
        "",
        f"{per_sampler} × {n_trials} trials per sampler, "
        f"{direction}. Cells are the median over seeds, with the first and third quartiles in "
        "brackets (the inter-quartile range); a **95% CI** is a bootstrap interval of the "
        "median (10,000 resamples of the seeds, drawn from a fixed seed). Computed from the "
        f"storage; open it with `{dashboard_command(storage)}`."
        + (f" Code and versions: {versions}." if versions else ""),
        "",
        summary_table(
            rows,
            n_trials=n_trials,
            threshold=threshold,
            fail_below=fail_below,
            direction=direction,
        ),
        "",
        "- **best @n**: the best value among the first n complete trials.",
    ]
    if threshold is not None:
        parts.append(
            f"- **trials to {_threshold_text(threshold)}**: complete trials until a value first "
            f"was {better} {_threshold_text(threshold)}; a seed that never got there counts as "
            f'more than {n_trials} (shown ">{n_trials}"), and the median is then an observed '
            "value (the upper one for an even number of seeds). A seed whose study failed or "
            "stopped short below the threshold is left out: it is not known whether it would "
            "have got there (see Incomplete)."
        )
    if any(r.rescored is not None for r in rows):
        parts.append(
            "- **best re-scored**: the study's best trial evaluated again on fresh episodes (its "
            "best value overstates it: it is the maximum of many noisy estimates)."
        )
    if fail_below is not None and any(r.rescored is not None for r in rows):
        worse = "<" if direction == "maximize" else ">"
        parts.append(
            f"- **seeds {worse} {_threshold_text(fail_below)}**: seeds whose re-scored best "
            "fails this line (e.g. stuck on a plateau)."
        )
    parts.append(
        "- **sampler ms/trial**: wall time of a trial minus the objective's own time "
        "(`datetime_complete - datetime_start - objective_s`), i.e. sampling plus storage; "
        "the median over a study's trials, so one-off costs of a fresh worker process "
        "(imports) do not count."
    )
    pairs = paired_table(paired, direction=direction)
    if pairs is not None:
        parts += [
            "",
            "## Paired: each sampler against the others, seed by seed",
            "",
            "On the seeds both samplers ran (the same seed means the same startup points and the "
            "same evaluation episodes), the difference *sampler − against* per seed: its median, "
            "a bootstrap 95% interval of that median, the seeds where the sampler's value was "
            "higher and lower, and the two-sided p-value of Wilcoxon's signed-rank test (seeds "
            "with no difference left out). For the re-scored best a positive difference favours "
            "the sampler when maximizing; for trials to the threshold a negative one does (a "
            f"seed that never reached it counts as {n_trials + 1}). `llm-control` is the `llm` "
            "set-up with random answers instead of the model: the model's own contribution is "
            "its difference from `llm-control`.",
            "",
            pairs,
        ]
    table = llm_table(rows)
    if table is not None:
        parts += ["", "## LLM cost per study", "", table]
    if plot is not None:
        parts += ["", f"![median best value so far, with inter-quartile band]({plot})"]
    if short or errors:
        parts += ["", "## Incomplete", ""]
        parts += [
            f"- {s.study_name}: **{s.status}** after {s.n_complete} of {n_trials} trials"
            + (f": {s.error}" if s.error else "")
            for s in short
        ]
        # Errors of no study here (a comparison's own, from Python) are listed as they are.
        listed = {s.study_name for s in studies if s.error}
        parts += [f"- {e}" for e in errors if e.split(":", 1)[0] not in listed]
    parts += [
        "",
        "Per-seed numbers: `studies.csv`; per-sampler numbers: `summary.csv`"
        + ("; paired differences: `paired.csv`." if paired else "."),
        "",
    ]
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _seed_ranges(seeds: Sequence[int]) -> str:
    """``0-19`` for a run of seeds, else the seeds listed.

    Example:
        >>> _seed_ranges([0, 1, 2, 3]), _seed_ranges([0, 3, 7])
        ('0-3', '0, 3, 7')
    """
    if len(seeds) > 2 and list(seeds) == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def plot_best_so_far(
    path: Path,
    curves: dict[str, Sequence[StudyStats]],
    *,
    n_trials: int,
    threshold: float | None,
    direction: Direction,
    title: str,
) -> Path:
    """Median best value so far per sampler, with the inter-quartile band, and the threshold.

    Drawn on the Agg canvas through matplotlib's object-oriented API (pyplot and the user's
    backend are never touched).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as error:
        raise ImportError(
            f"matplotlib is needed for the comparison's plot: {install_hint('plots')}; "
            "or pass --no-plot."
        ) from error

    figure = Figure(figsize=(7.5, 4.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    x = np.arange(1, n_trials + 1)
    shown_low: list[float] = []
    shown_high: list[float] = []
    for i, (sampler, studies) in enumerate(curves.items()):
        matrix = best_so_far_matrix(studies, n_trials)
        if not np.isfinite(matrix).any():
            continue
        q1, median, q3 = (_nanpercentile(matrix, q) for q in (25, 50, 75))
        color = f"C{i % 10}"
        label = f"{sampler} ({len(studies)} seeds)"
        # The control is drawn beside the LLM it controls: the same colour as the LLM before it
        # would hide it, so its own colour and a dashed line.
        style = "--" if sampler == CONTROL else "-"
        ax.plot(
            x,
            median,
            color=color,
            linewidth=2,
            linestyle=style,
            drawstyle="steps-post",
            label=label,
        )
        ax.fill_between(x, q1, q3, color=color, alpha=0.18, linewidth=0, step="post")
        # The first trials are often far worse than the rest: scale the axis from trial 5 on.
        tail = slice(min(n_trials, 5) - 1, None)
        if direction == "maximize":
            lows, highs = _finite(q1[tail], q1), _finite(q3, q3)
        else:
            lows, highs = _finite(q1, q1), _finite(q3[tail], q3)
        shown_low.append(float(lows.min()))  # the matrix has a finite value, so these do too
        shown_high.append(float(highs.max()))
    if threshold is not None:
        ax.axhline(
            threshold,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"threshold {threshold:g}",
        )
        shown_low.append(threshold)
        shown_high.append(threshold)
    if shown_low:
        low, high = min(shown_low), max(shown_high)
        pad = 0.08 * (high - low) if high > low else 1.0
        ax.set_ylim(low - pad, high + pad)
    ax.set_xlim(1, n_trials)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel("best value so far")
    ax.set_title(f"{title}: median over seeds, band = inter-quartile range")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right" if direction == "maximize" else "upper right", fontsize=9)
    os.makedirs(path.parent, exist_ok=True)
    figure.savefig(path)
    return path


def _finite(values: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """The finite entries of ``values``, or of ``fallback`` when there are none."""
    finite = values[np.isfinite(values)]
    return finite if finite.size else fallback[np.isfinite(fallback)]


def _nanpercentile(matrix: np.ndarray, q: float) -> np.ndarray:
    out = np.full(matrix.shape[1], np.nan)
    for j in range(matrix.shape[1]):
        column = matrix[:, j]
        column = column[np.isfinite(column)]
        if column.size:
            out[j] = np.percentile(column, q)
    return out
