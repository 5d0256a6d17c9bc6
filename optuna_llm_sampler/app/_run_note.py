"""What ``optuna-llm-sampler run`` shows in optuna-dashboard: a study note and two figures.

A run gets a study note (its setup, cost and re-scored result) and two plotly figures on the
study's page. The note needs nothing optional; the figures need optuna-dashboard and plotly,
and without them they are skipped with one warning. No problem here can fail a run.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import math
from typing import Any
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_llm_sampler._records import FALLBACK
from optuna_llm_sampler._records import MODEL
from optuna_llm_sampler.app._install import install_hint
from optuna_llm_sampler.app._run_config import dashboard_command
from optuna_llm_sampler.app._run_config import RunConfig
from optuna_llm_sampler.app._run_config import RunSummary
from optuna_llm_sampler.integrations._dashboard_note import dashboard_module
from optuna_llm_sampler.integrations._dashboard_note import fenced
from optuna_llm_sampler.integrations._dashboard_note import inert
from optuna_llm_sampler.integrations._dashboard_note import markdown_cell
from optuna_llm_sampler.integrations._dashboard_note import warn_once
from optuna_llm_sampler.integrations._dashboard_note import write_study_note
from optuna_llm_sampler.providers import redact_url


if TYPE_CHECKING:
    from optuna.study import Study


BEST_SO_FAR_ID = "llm-best-so-far"
PROPOSAL_MAP_ID = "llm-proposal-map"


def _source(trial: FrozenTrial) -> str:
    if MODEL not in trial.user_attrs:
        return "startup / other"
    return "fallback" if FALLBACK in trial.user_attrs else "LLM proposal"


_MARKERS = {"LLM proposal": "circle", "fallback": "x", "startup / other": "square"}


def _figures(study: Study, *, env_id: str | None, param_names: Sequence[str]) -> dict[str, Any]:
    import plotly.graph_objects as go

    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    if not trials:
        return {}
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    where = f" on {env_id}" if env_id else ""
    figures: dict[str, Any] = {}

    curve = go.Figure()
    for source in _MARKERS:
        chosen = [t for t in trials if _source(t) == source]
        if chosen:
            curve.add_trace(
                go.Scatter(
                    x=[t.number for t in chosen],
                    y=[t.value for t in chosen],
                    mode="markers",
                    name=source,
                    marker={"symbol": _MARKERS[source], "size": 6, "opacity": 0.6},
                )
            )
    best: list[float] = []
    for t in trials:
        value = float(t.value)  # type: ignore[arg-type]
        best.append(value if not best else (max if maximize else min)(best[-1], value))
    curve.add_trace(
        go.Scatter(
            x=[t.number for t in trials],
            y=best,
            mode="lines",
            name="best so far",
            line={"shape": "hv", "width": 2},
        )
    )
    curve.update_layout(
        title=f"Best so far{where}", xaxis_title="trial", yaxis_title="objective value"
    )
    figures[BEST_SO_FAR_ID] = curve

    names = tuple(param_names)
    on_map = [t for t in trials if len(names) == 2 and all(n in t.params for n in names)]
    if on_map and all(set(t.params) == set(names) for t in trials):
        x_name, y_name = names
        values = [float(t.value) for t in on_map]  # type: ignore[arg-type]
        low, high = min(values), max(values)
        proposals = go.Figure()
        for source in _MARKERS:
            chosen = [t for t in on_map if _source(t) == source]
            if not chosen:
                continue
            proposals.add_trace(
                go.Scatter(
                    x=[t.params[x_name] for t in chosen],
                    y=[t.params[y_name] for t in chosen],
                    mode="markers",
                    name=source,
                    text=[f"trial {t.number}: {t.value:.4g}" for t in chosen],
                    hoverinfo="text",
                    marker={
                        "symbol": _MARKERS[source],
                        "size": 9,
                        "color": [t.value for t in chosen],
                        "colorscale": "Viridis",
                        "cmin": low,
                        "cmax": high,
                        "showscale": not proposals.data,  # one colour bar, on the first
                        "colorbar": {"title": {"text": "value"}},
                        "line": {"width": 0.5, "color": "black"},
                    },
                )
            )
        proposals.update_layout(
            title=f"Proposals over ({x_name}, {y_name}){where}",
            xaxis_title=x_name,
            yaxis_title=y_name,
            legend={"orientation": "h", "y": -0.2},
        )
        figures[PROPOSAL_MAP_ID] = proposals
    return figures


def save_study_figures(
    study: Study, *, env_id: str | None = None, param_names: Sequence[str] = ("a", "b")
) -> list[str]:
    """Save plotly figures to the study, shown on its page in optuna-dashboard.

    Two figures, overwritten on each call: the objective value per trial with the best so far
    (LLM proposals, fallbacks and startup trials marked apart), and, for a study of exactly two
    parameters ``param_names`` (a linear policy on MountainCar), the map of the points tried
    over those two parameters, coloured by value, with the same markers.

    Example:
        >>> save_study_figures(study, env_id="MountainCarContinuous-v0")
        ['llm-best-so-far', 'llm-proposal-map']

    Args:
        study: A single-objective study.
        env_id: Named in the titles.
        param_names: The two parameters of the map.

    Returns:
        The ids of the figures saved; empty when optuna-dashboard or plotly is missing, the study
        has no complete trial, or saving failed (logged, never raised).
    """
    dashboard = dashboard_module()
    if dashboard is None or study._is_multi_objective():
        return []
    try:
        figures = _figures(study, env_id=env_id, param_names=param_names)
        for figure_id, figure in figures.items():
            dashboard.save_plotly_graph_object(study, figure, graph_object_id=figure_id)
    except ImportError:
        warn_once("plotly", "The dashboard figures need plotly: " + install_hint("dashboard"))
        return []
    except Exception as error:
        warn_once(
            "figures",
            f"Could not save the dashboard figures of study {study.study_name!r} "
            f"({type(error).__name__}: {error}).",
        )
        return []
    return list(figures)


# --------------------------------------------------------------------------- the run command


def study_note_markdown(
    summary: RunSummary, config: RunConfig, *, study_user_attrs: Mapping[str, Any] | None = None
) -> str:
    """The study note ``optuna-llm-sampler run`` writes (see :func:`publish_run`)."""
    attrs = study_user_attrs or {}
    who = config.sampler if summary.model is None else f"LLM, model `{summary.model}`"
    if config.base_url:
        who += f" at {redact_url(config.base_url)}"
    template = config.llm_options.get("template")
    rows: list[tuple[str, Any]] = [
        ("environment", f"`{config.env}`"),
        ("sampler", who),
    ]
    if config.sampler == "llm":
        rows.append(("prompt template", "custom" if template else "default (ProPS tutorial)"))
    rows += [
        ("parameters", str(attrs.get("params", ",".join(summary.best_params))).replace(",", ", ")),
        ("weights in", f"[{config.low:g}, {config.high:g}]"),
        (
            "budget",
            f"{config.n_trials} trials"
            + (f", {config.n_startup_trials} random first" if config.sampler == "llm" else "")
            + f", {config.n_eval_episodes} episodes of ≤ {config.max_steps} steps each",
        ),
        ("seed", config.seed),
    ]
    if config.max_total_tokens is not None:
        rows.append(("token budget", config.max_total_tokens))
    u = summary.usage
    if u.llm_trials:
        rows += [
            (
                "LLM trials",
                f"{u.proposals} proposals, {u.fallbacks} fallbacks "
                f"({u.proposal_share:.0%} the LLM's own)",
            ),
            (
                "LLM cost",
                f"{u.calls} calls, {u.prompt_tokens} prompt + {u.completion_tokens} completion "
                f"tokens, {u.latency_s:.1f} s waiting",
            ),
        ]
        if summary.fallback_groups:
            # Model and provider text: inert, so the note shows it and loads nothing.
            rows.append(("fallback reasons", inert(summary.fallbacks_text())))
    rows.append(("complete trials", summary.n_trials))
    if summary.best_value is not None:
        weights = ", ".join(f"{k} = {v:.4g}" for k, v in summary.best_params.items())
        rows += [("best weights", weights), ("best value seen", f"{summary.best_value:.2f}")]
    if summary.rescored_mean is not None and summary.rescored_std is not None:
        rows.append(
            (
                "best re-scored",
                f"**{summary.rescored_mean:.2f} ± {summary.rescored_std:.2f}** on "
                f"{config.rescore_episodes} fresh episodes",
            )
        )
    lines = [f"### {summary.study_name}", "", "| | |", "| --- | --- |"]
    lines += [f"| {name} | {markdown_cell(value)} |" for name, value in rows]
    lines += [
        "",
        "The value seen is the mean over the trial's own episodes and overstates the best "
        "trial; the re-scored value uses fresh ones. Each LLM trial's note shows its "
        "reasoning, the end of its prompt and the raw answer"
        + ("; its artifacts hold a rollout and the policy." if summary.artifacts else "."),
        "",
        "Open it again with:",
        "",
        fenced(dashboard_command(summary.storage, summary.artifacts), "bash"),
    ]
    return "\n".join(lines) + "\n"


def publish_run(study: Study, summary: RunSummary, config: RunConfig) -> bool:
    """Write what ``optuna-llm-sampler run`` did to the dashboard: the study note and figures.

    Example:
        >>> summary = run_study(config)  # calls publish_run(study, summary, config) at its end

    Returns:
        Whether the note was written (it needs no optional dependency; the figures need
        optuna-dashboard and plotly): ``False`` when the write failed (logged, never raised).
    """
    try:
        names = str(study.user_attrs.get("params", "")).split(",")
        text = study_note_markdown(summary, config, study_user_attrs=study.user_attrs)
    except Exception as error:
        warn_once("run-note", f"Could not build the dashboard note: {error!r}")
        return False
    written = write_study_note(study, text)  # needs nothing optional
    if dashboard_module() is not None:
        save_study_figures(study, env_id=config.env, param_names=[n for n in names if n])
    return written
