"""What optuna-dashboard shows of the LLM: a note per trial, a study note, figures, the command.

optuna-dashboard shows a trial's user_attrs (short values, which do not wrap) and its Markdown
note; it does not show system_attrs. So each LLM trial gets a short note with what the user_attrs
cannot hold: the reasoning, the proposal, the end of the prompt and the raw answers. A run gets a
study note (its setup, cost and re-scored result) and two plotly figures on the study's page.

optuna-dashboard (and plotly for the figures) are optional: every function here does nothing and
returns ``False`` (or ``[]``) when they are missing, and never raises on a storage or rendering
problem, so a note can never fail a trial or a run.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import math
import os
import re
import socket
import socketserver
import sys
import textwrap
from typing import Any
from typing import TYPE_CHECKING
from wsgiref.simple_server import make_server
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import WSGIServer

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_llm_sampler._records import FALLBACK
from optuna_llm_sampler._records import LLMRecord
from optuna_llm_sampler._records import MODEL


if TYPE_CHECKING:
    from optuna.storages import BaseStorage
    from optuna.study import Study

    from optuna_llm_sampler._run import RunConfig
    from optuna_llm_sampler._run import RunSummary


_logger = optuna.logging.get_logger(f"optuna.{__name__}")

PROMPT_EXCERPT_LINES = 25
ANSWER_MAX_CHARS = 1200
WRAP_WIDTH = 90
BEST_SO_FAR_ID = "llm-best-so-far"
PROPOSAL_MAP_ID = "llm-proposal-map"
DEFAULT_PORT = 8080
_INSTALL_HINT = 'pip install "optuna-llm-sampler[dashboard]"'

_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    """A dashboard problem is worth one warning per process, not one per trial."""
    if key in _warned:
        _logger.debug(message)
        return
    _warned.add(key)
    _logger.warning(message)


def _dashboard_module() -> Any | None:
    try:
        import optuna_dashboard
    except ImportError:
        return None
    return optuna_dashboard


class _TrialRef:
    """The three things ``optuna_dashboard.save_note`` reads from a trial.

    The sampler holds a :class:`~optuna.trial.FrozenTrial` of a running trial, not an
    :class:`optuna.Trial`; building an ``optuna.Trial`` would call the sampler's ``before_trial``
    again, so this stands in for one.
    """

    def __init__(self, study: Study, trial_id: int) -> None:
        self.storage: BaseStorage = study._storage
        self.study = study
        self._trial_id = trial_id


# --------------------------------------------------------------------------- Markdown helpers


def _fenced(text: str, info: str = "text") -> str:
    """``text`` in a fenced code block whose fence no backtick run inside can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip()}\n{fence}"


def _cell(value: Any) -> str:
    """A value for a Markdown table cell: short numbers, no pipes, no newlines."""
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.strip().splitlines())


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rstrip() + f"\n… ({len(text) - limit} more characters)"


def _wrap(text: str, width: int = WRAP_WIDTH) -> str:
    """Hard-wrap long lines: optuna-dashboard widens the whole page for a long line of code."""
    out: list[str] = []
    for line in text.splitlines():
        if len(line) <= width:
            out.append(line)
            continue
        out += textwrap.wrap(
            line,
            width,
            subsequent_indent="  ",
            break_on_hyphens=False,
            drop_whitespace=True,
            replace_whitespace=False,
        ) or [line[:width]]
    return "\n".join(out)


def trial_note_markdown(trial_number: int, record: LLMRecord) -> str:
    """The Markdown note of one LLM trial (see :func:`write_trial_note`).

    Example:
        >>> record = LLMRecord(model="gpt-4o", attempts=1, reasoning="Step towards the best.")
        >>> print(trial_note_markdown(7, record).splitlines()[0])
        #### Trial 7: proposed by `gpt-4o`
    """
    if record.fallback is None:
        lines = [f"#### Trial {trial_number}: proposed by `{record.model}`", ""]
    else:
        lines = [
            f"#### Trial {trial_number}: independent sampler (fallback from `{record.model}`)",
            "",
            f"**Fallback:** {record.fallback}",
            "",
        ]
    if record.reasoning:
        lines += [_quote(record.reasoning), ""]
    if record.proposal:  # one row: the note stays short with many parameters
        names = list(record.proposal)
        values = [
            _cell(record.proposal[n]) + (" (clipped)" if n in record.clipped else "")
            for n in names
        ]
        lines += [
            "| " + " | ".join(_cell(n) for n in names) + " |",
            "|" + " --- |" * len(names),
            "| " + " | ".join(values) + " |",
            "",
        ]
    lines += [
        f"attempts **{record.attempts}** · tokens **{record.prompt_tokens}** prompt + "
        f"**{record.completion_tokens}** completion · latency **{record.latency_s:.2f} s**",
        "",
    ]
    # The prompt is everything before the first answer; what follows are the answers, with the
    # feedback of each re-ask between them.
    first_answer = next(
        (i for i, m in enumerate(record.messages) if m.role == "assistant"), len(record.messages)
    )
    n_answer = 0
    for message in record.messages[first_answer:]:
        if message.role == "assistant":
            n_answer += 1
            head, text = f"**Answer {n_answer}:**", _cut(message.content, ANSWER_MAX_CHARS)
        else:
            head, text = "**Feedback:**", _cut(message.content, ANSWER_MAX_CHARS // 2)
        lines += [head, "", _fenced(_wrap(text)), ""]
    # The end of the prompt holds the latest history rows and the question: what the model saw
    # last before this proposal.
    prompt = record.messages[first_answer - 1].content if first_answer else ""
    prompt_lines = prompt.strip("\n").splitlines()
    if prompt_lines:
        shown = prompt_lines[-PROMPT_EXCERPT_LINES:]
        while shown and not shown[0].strip():
            shown.pop(0)
        if len(shown) < len(prompt_lines):
            head = f"**Prompt**, its last {len(shown)} of {len(prompt_lines)} lines:"
        else:
            head = f"**Prompt** ({len(prompt_lines)} lines):"
        lines += [head, "", _fenced(_wrap("\n".join(shown))), ""]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- notes


def write_trial_note(study: Study, trial: FrozenTrial, record: LLMRecord) -> bool:
    """Write the optuna-dashboard note of an LLM trial, while the trial runs.

    The note holds what the short user attributes cannot: the model's reasoning, the proposal as
    a small table, attempts, tokens and latency, the fallback reason if any, the last
    ~25 lines of the prompt (the end of the history and the question) and the raw answers.
    :class:`~optuna_llm_sampler.LLMSampler` calls it for every LLM trial
    (``dashboard_notes=True``).

    Example:
        .. code-block:: python

            record = get_llm_record(trial)
            write_trial_note(study, trial, record)

    Args:
        study: The trial's study.
        trial: The trial (running or finished).
        record: What the sampler did for it.

    Returns:
        Whether the note was written: ``False`` when optuna-dashboard is not installed or the
        write failed (logged, never raised).
    """
    return _save_note(
        lambda: (_TrialRef(study, trial._trial_id), trial_note_markdown(trial.number, record)),
        "trial-note",
        f"Trial {trial.number}: could not write the dashboard note",
        "; the trial goes on without it.",
    )


def write_study_note(study: Study, text: str) -> bool:
    """Replace the study's optuna-dashboard note with ``text`` (Markdown).

    Example:
        >>> write_study_note(study, "## MountainCar with gpt-4o\\n400 trials, 20 random first.")
        True

    Returns:
        Whether the note was written: ``False`` when optuna-dashboard is not installed or the
        write failed (logged, never raised).
    """
    return _save_note(
        lambda: (study, text),
        "study-note",
        f"Could not write the dashboard note of study {study.study_name!r}",
        ".",
    )


def _save_note(
    target_and_body: Callable[[], tuple[Any, str]], kind: str, failure: str, tail: str
) -> bool:
    """Save a note through optuna-dashboard; a failure is logged once per kind, never raised."""
    dashboard = _dashboard_module()
    if dashboard is None:
        return False
    try:
        target, body = target_and_body()
        dashboard.save_note(target, body)
    except Exception as error:
        _warn_once(kind, f"{failure} ({type(error).__name__}: {error}){tail}")
        return False
    return True


# --------------------------------------------------------------------------- figures


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
    dashboard = _dashboard_module()
    if dashboard is None or study._is_multi_objective():
        return []
    try:
        figures = _figures(study, env_id=env_id, param_names=param_names)
        for figure_id, figure in figures.items():
            dashboard.save_plotly_graph_object(study, figure, graph_object_id=figure_id)
    except ImportError:
        _warn_once("plotly", "The dashboard figures need plotly: " + _INSTALL_HINT)
        return []
    except Exception as error:
        _warn_once(
            "figures",
            f"Could not save the dashboard figures of study {study.study_name!r} "
            f"({type(error).__name__}: {error}).",
        )
        return []
    return list(figures)


# --------------------------------------------------------------------------- the run command


def dashboard_command(storage: str, artifacts: str | None = None) -> str:
    """The command that opens a study's storage (and artifacts) in optuna-dashboard.

    Example:
        >>> dashboard_command("sqlite:///study.db", "art")
        'optuna-llm-sampler dashboard --storage sqlite:///study.db --artifacts art'
    """
    command = f"optuna-llm-sampler dashboard --storage {storage}"
    return command + (f" --artifacts {artifacts}" if artifacts else "")


def study_note_markdown(
    summary: RunSummary, config: RunConfig, *, study_user_attrs: Mapping[str, Any] | None = None
) -> str:
    """The study note ``optuna-llm-sampler run`` writes (see :func:`publish_run`)."""
    attrs = study_user_attrs or {}
    who = config.sampler if summary.model is None else f"LLM, model `{summary.model}`"
    if config.base_url:
        who += f" at {config.base_url}"
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
    lines += [f"| {name} | {_cell(value)} |" for name, value in rows]
    lines += [
        "",
        "The value seen is the mean over the trial's own episodes and overstates the best "
        "trial; the re-scored value uses fresh ones. Each LLM trial's note shows its "
        "reasoning, the end of its prompt and the raw answer"
        + ("; its artifacts hold a rollout and the policy." if summary.artifacts else "."),
        "",
        "Open it again with:",
        "",
        _fenced(dashboard_command(summary.storage, summary.artifacts), "bash"),
    ]
    return "\n".join(lines) + "\n"


def publish_run(study: Study, summary: RunSummary, config: RunConfig) -> bool:
    """Write what ``optuna-llm-sampler run`` did to the dashboard: the study note and figures.

    Example:
        >>> summary = run_study(config)  # calls publish_run(study, summary, config) at its end

    Returns:
        Whether the note was written: ``False`` when optuna-dashboard is not installed or the
        write failed (logged, never raised).
    """
    if _dashboard_module() is None:
        return False
    try:
        names = str(study.user_attrs.get("params", "")).split(",")
        text = study_note_markdown(summary, config, study_user_attrs=study.user_attrs)
    except Exception as error:
        _warn_once("run-note", f"Could not build the dashboard note: {error!r}")
        return False
    written = write_study_note(study, text)
    save_study_figures(study, env_id=config.env, param_names=[n for n in names if n])
    return written


# --------------------------------------------------------------------------- the server


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingServerV6(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        _logger.debug(f"{self.address_string()} {format % args}")


class DashboardServer:
    """optuna-dashboard on a threaded local HTTP server, bound as soon as it is created.

    Example:
        .. code-block:: python

            with DashboardServer("sqlite:///study.db", artifacts="art", port=0) as server:
                print(server.url)  # http://127.0.0.1:PORT/dashboard
                server.serve_forever()

    Args:
        storage: A storage URL (``sqlite:///study.db``, ``journal:PATH``, ...) or a storage.
        artifacts: The folder ``run --artifacts`` uploaded to, so trials show their files.
        host: The address to listen on; the dashboard has no authentication, so keep it local.
        port: The port; ``0`` picks a free one (see :attr:`port`).

    Raises:
        ValueError: A bad storage URL, a missing SQLite file or artifacts folder, a busy port.
        ImportError: optuna-dashboard is not installed.
    """

    def __init__(
        self,
        storage: str | BaseStorage,
        *,
        artifacts: str | None = None,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
    ) -> None:
        from optuna.artifacts import FileSystemArtifactStore

        from optuna_llm_sampler._storage import open_storage

        dashboard = _dashboard_module()
        if dashboard is None:
            raise ImportError(
                "optuna-llm-sampler dashboard needs optuna-dashboard: " + _INSTALL_HINT
            )
        if isinstance(storage, str):
            if storage.startswith("sqlite:///") and storage != "sqlite:///:memory:":
                path = storage[len("sqlite:///") :]
                if not os.path.exists(path):
                    raise ValueError(f"storage {storage!r}: no such file {path!r}.")
            storage = open_storage(storage)
        store = None
        if artifacts is not None:
            if not os.path.isdir(artifacts):
                raise ValueError(f"--artifacts {artifacts!r} is not a folder.")
            store = FileSystemArtifactStore(artifacts)
        app = dashboard.wsgi(storage, artifact_store=store)
        try:
            self._server = make_server(
                host,
                port,
                app,
                server_class=_ThreadingServerV6 if ":" in host else _ThreadingServer,
                handler_class=_QuietHandler,
            )
        except OSError as error:
            raise ValueError(
                f"cannot listen on {host}:{port}: {error.strerror or error}"
            ) from None
        self.host = host
        self.port: int = self._server.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/dashboard"

    def serve_forever(self) -> None:
        """Answer requests until :meth:`shutdown` is called from another thread."""
        self._server.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` (from another thread) and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def close(self) -> None:
        """Close the socket of a server that is not serving."""
        self._server.server_close()

    def __enter__(self) -> DashboardServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def add_dashboard_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``optuna-llm-sampler dashboard`` on the command's sub-parsers."""
    from optuna_llm_sampler._run import DEFAULT_STORAGE

    parser = subparsers.add_parser(
        "dashboard",
        help="open a study's storage (and artifacts) in optuna-dashboard",
        description=(
            "Serve optuna-dashboard for a storage: each LLM trial shows its reasoning, prompt "
            "excerpt and answer in its note, its llm_* user attributes, and its artifacts "
            "(rollouts) when --artifacts is given. Stop it with Ctrl-C."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help="URL or journal:PATH")
    parser.add_argument("--artifacts", default=None, help="the folder given to run --artifacts")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (no authentication: keep local)"
    )
    parser.set_defaults(handler=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    try:
        server = DashboardServer(
            args.storage, artifacts=args.artifacts, host=args.host, port=args.port
        )
    except ImportError as error:
        raise ValueError(str(error)) from None
    print(f"optuna-dashboard at {server.url}  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.close()
    return 0
