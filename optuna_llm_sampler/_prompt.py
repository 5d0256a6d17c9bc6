"""The prompt: a Jinja template rendered from the search space and the history.

Pure functions: :func:`build_context` gathers the template variables, :func:`render_prompt` turns
a template and a context into chat messages. The default template is the ProPS tutorial's prompt,
generalized (``templates/props.j2``).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import json
import math
import os
from pathlib import Path
import re
from typing import Any

import jinja2
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.study import StudyDirection

from optuna_llm_sampler._answer import REASONING_KEY
from optuna_llm_sampler._answer import reasoning_key
from optuna_llm_sampler._history import best_row
from optuna_llm_sampler._history import HistoryEntry
from optuna_llm_sampler._options import AnswerFormat
from optuna_llm_sampler._options import HistoryStyle
from optuna_llm_sampler._space import STEP_PREFIX
from optuna_llm_sampler._space import step_space
from optuna_llm_sampler.providers._base import Message


_TEMPLATES = Path(__file__).parent / "templates"
_TEMPLATE_SUFFIXES = (".j2", ".jinja", ".jinja2", ".txt")
_JINJA_MARKUP = ("{{", "{%", "{#")
# Characters that would split a CSV field or a "name: value; ..." row, or a row itself.
_NEEDS_QUOTES = re.compile(r"[,;:=：\"'`\x00-\x1f\x7f]|^\s|\s$|^$")
# Longest error quoted in a re-ask: the problems of many candidates are not all sent back.
_MAX_FEEDBACK_CHARS = 1500
DEFAULT_TEMPLATE_PATH = _TEMPLATES / "props.j2"
_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=False,
    autoescape=False,
)


def looks_like_path(template: str) -> bool:
    """Whether a template string is meant as a file: one line without Jinja markup that names a
    file, ends in ``.j2``/``.jinja``/``.jinja2``/``.txt``, or holds a path separator.

    Example:
        >>> looks_like_path("prompts/mine.j2"), looks_like_path("Propose {{ param_names }}")
        (True, False)
    """
    text = template.strip()
    if "\n" in text or any(mark in text for mark in _JINJA_MARKUP):
        return False
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return (
        os.path.isfile(text)
        or text.lower().endswith(_TEMPLATE_SUFFIXES)
        or any(sep in text for sep in separators)
    )


def load_template(template: str | os.PathLike[str] | None = None) -> jinja2.Template:
    """A Jinja template from a source string, a template file, or the default.

    A string is read as a path when it :func:`looks like one <looks_like_path>` (and then the
    file must exist); otherwise it is the template's source. Undefined variables raise at render
    time; :class:`~optuna_llm_sampler.LLMSampler` renders its template once when it is built, so
    a typo fails there, with the variable's name.

    Raises:
        ValueError: The file does not exist or the source is not valid Jinja.

    Example:
        >>> template = load_template("Propose {{ param_names | join(', ') }}: {{ history_table }}")
    """
    if template is None:
        return _ENVIRONMENT.get_template(DEFAULT_TEMPLATE_PATH.name)
    is_path = isinstance(template, os.PathLike) or (
        isinstance(template, str) and looks_like_path(template)
    )
    if is_path:
        path = Path(template.strip() if isinstance(template, str) else template)
        if not path.is_file():
            raise ValueError(
                f"template file {str(path)!r} does not exist; pass an existing file, or the "
                "template's source with Jinja markup such as {{ history_table }}."
            )
        source = path.read_text(encoding="utf-8")
    elif isinstance(template, str):
        source = template
    else:
        raise ValueError(f"template must be a string, a path or None, got {type(template)}.")
    try:
        return _ENVIRONMENT.from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise ValueError(f"template is not valid Jinja: {error}") from error


def format_number(value: float, precision: int | None) -> str:
    """A number as the prompt shows it: ``precision`` significant digits, or full precision.

    Example:
        >>> format_number(92.123456, 4)
        '92.12'
        >>> format_number(-0.30000000000000004, None)
        '-0.30000000000000004'
    """
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    if precision is None:
        return repr(float(value))
    text = f"{value:.{precision}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def quote_text(text: str) -> str:
    """Text as the prompt shows a name or a choice: as is, or as a JSON string when it holds a
    character that would split a CSV field or a ``name: value`` pair (comma, semicolon, colon,
    equals sign, quote, line break), is empty, or starts or ends with a space.

    Example:
        >>> print(quote_text("adam"), quote_text("x, y"), quote_text('say "hi"'))
        adam "x, y" "say \\"hi\\""
    """
    if _NEEDS_QUOTES.search(text) is None:
        return text
    return json.dumps(text, ensure_ascii=False)


def show_name(name: str) -> str:
    """A parameter name as the prompt shows it (:func:`quote_text`)."""
    return quote_text(name)


def show_choice(choice: Any) -> str:
    """A categorical choice as the prompt shows it: strings through :func:`quote_text`."""
    return quote_text(choice) if isinstance(choice, str) else str(choice)


def format_param(value: Any, distribution: BaseDistribution, precision: int | None) -> str:
    """A parameter value as the prompt shows it.

    A float on a linear scale is shown with the decimals that give its largest bound
    ``precision`` significant digits: on [-7, 7] with ``precision=3``, two decimals (``-0.3``,
    ``5.12``), trailing zeros dropped. Log-scale floats
    keep ``precision`` significant digits; floats on a step grid keep the digits the step needs, so
    a rounded value is still on the grid.

    Example:
        >>> format_param(5.1234, FloatDistribution(-7, 7), 3)
        '5.12'
    """
    if isinstance(distribution, CategoricalDistribution):
        return show_choice(value)
    if isinstance(distribution, IntDistribution):
        return str(int(value))
    if isinstance(distribution, FloatDistribution) and distribution.step is not None:
        decimals = _step_decimals(distribution.step)
        return f"{float(value):.{decimals}f}"
    places = shown_decimals(distribution, precision)
    if places is None:
        return format_number(float(value), precision)
    text = f"{float(value):.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def shown_decimals(distribution: BaseDistribution, precision: int | None) -> int | None:
    """The decimals the prompt shows of a linear float without a step (see
    :func:`format_param`), else ``None`` (significant digits, or not a float).

    Example:
        >>> box = FloatDistribution(-7, 7)
        >>> shown_decimals(box, 3), shown_decimals(box, None)
        (2, None)
    """
    if (
        precision is None
        or not isinstance(distribution, FloatDistribution)
        or distribution.log
        or distribution.step is not None
        or distribution.high <= distribution.low
    ):
        return None
    magnitude = max(abs(distribution.low), abs(distribution.high))
    return max(0, precision - 1 - math.floor(math.log10(magnitude)))


def shown_key(
    params: Mapping[str, Any], search_space: Mapping[str, BaseDistribution], precision: int | None
) -> tuple[str, ...]:
    """A point as the prompt shows it: two points with one key look the same to the model.

    Example:
        >>> space = {"a": FloatDistribution(-7, 7)}
        >>> shown_key({"a": 1.2341}, space, 3) == shown_key({"a": 1.2349}, space, 3)
        True
    """
    return tuple(
        format_param(params[name], dist, precision) for name, dist in search_space.items()
    )


def _step_decimals(step: float) -> int:
    text = f"{step:.12f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def describe_param(name: str, distribution: BaseDistribution) -> dict[str, Any]:
    """A parameter as template data: name, kind, bounds or choices, and one line of prose."""
    spec: dict[str, Any] = {"name": name}
    if isinstance(distribution, CategoricalDistribution):
        choices = list(distribution.choices)
        spec.update(kind="categorical", choices=choices, low=None, high=None, log=False, step=None)
        shown = ", ".join(show_choice(c) for c in choices)
        spec["description"] = f"{show_name(name)}: one of {shown}"
        return spec
    if isinstance(distribution, (FloatDistribution, IntDistribution)):
        kind = "int" if isinstance(distribution, IntDistribution) else "float"
        low, high = distribution.low, distribution.high
        step = distribution.step
        spec.update(kind=kind, choices=None, low=low, high=high, log=distribution.log, step=step)
        noun = "integer" if kind == "int" else "number"
        text = f"{show_name(name)}: {noun} between {_bound(low)} and {_bound(high)}"
        if distribution.log:
            text += " (log scale)"
        if step is not None and not (kind == "int" and step == 1):
            text += f" in steps of {_bound(step)}"
        spec["description"] = text
        return spec
    raise ValueError(f"distribution of {name!r} is not supported: {distribution!r}.")


def _bound(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return format_number(float(value), 6)


def function_label(names: Sequence[str]) -> str:
    """``f(a,b)`` like the tutorial, or plain ``f`` when the names would make it long or hold
    characters that need quotes (:func:`quote_text`) or parentheses."""
    label = f"f({','.join(names)})"
    plain = all(quote_text(n) == n and "(" not in n and ")" not in n for n in names)
    return label if plain and len(label) <= 24 else "f"


def history_line(
    row: HistoryEntry,
    search_space: Mapping[str, BaseDistribution],
    *,
    precision: int | None,
    function: str,
    style: HistoryStyle = "csv",
) -> str:
    """One history row: the tutorial's ``a: -0.3; b: 2.9; f(a,b): 12.5``, or a CSV row
    ``-0.3,2.9,12.5`` under the header of :func:`history_header` (about half the tokens).
    """
    values = [
        format_param(row.params[name], dist, precision) for name, dist in search_space.items()
    ]
    value = "pending" if row.value is None else format_number(row.value, precision)
    if style == "csv":
        return ",".join([*values, value])
    parts = [f"{show_name(name)}: {text}" for name, text in zip(search_space, values, strict=True)]
    parts.append(f"{function}: {value}")
    return "; ".join(parts)


def history_header(names: Sequence[str], function: str, style: HistoryStyle) -> str:
    """The table's header line: ``a,b,f(a,b)`` for CSV rows, nothing for the tutorial's rows."""
    return ",".join([*(show_name(n) for n in names), function]) if style == "csv" else ""


def least_explored(
    rows: Sequence[HistoryEntry],
    search_space: Mapping[str, BaseDistribution],
    *,
    n_bins: int = 7,
) -> list[str]:
    """For each numeric parameter, its least sampled slice of the range, in words.

    The range is cut into ``n_bins`` equal slices (in log space for log-scale parameters) and the
    slice holding the fewest evaluated or pending points is named, e.g. ``"b between 5 and 7
    (0 of 40 points)"``. A hint for exploration that leaves the choice to the LLM.
    """
    hints = []
    for name, dist in search_space.items():
        if not isinstance(dist, (FloatDistribution, IntDistribution)) or dist.high <= dist.low:
            continue
        log = dist.log
        low = math.log(dist.low) if log else float(dist.low)
        high = math.log(dist.high) if log else float(dist.high)
        counts = [0] * n_bins
        for row in rows:
            x = float(row.params[name])
            x = math.log(x) if log else x
            counts[min(n_bins - 1, max(0, int((x - low) / (high - low) * n_bins)))] += 1
        emptiest = min(range(n_bins), key=lambda i: (counts[i], i))
        edges = [low + (high - low) * k / n_bins for k in (emptiest, emptiest + 1)]
        if log:
            edges = [math.exp(e) for e in edges]
        low_edge, high_edge = _bound(round(edges[0], 4)), _bound(round(edges[1], 4))
        hints.append(
            f"{show_name(name)} between {low_edge} and {high_edge} "
            f"({counts[emptiest]} of {len(rows)} points)"
        )
    return hints


def suggested_step(
    rows: Sequence[HistoryEntry],
    search_space: Mapping[str, BaseDistribution],
    *,
    direction: StudyDirection,
    search_std: float,
    widen_after: int | None,
) -> tuple[float, int]:
    """The step the prompt suggests around the best point, and the trials since the best one.

    The step is ``search_std``, doubled for every ``widen_after`` trials completed since the best
    one, up to half the widest range: a small model stepping about a point it cannot improve on
    (a plateau, a local optimum) keeps trying the same neighbourhood unless told to go further.

    Example:
        >>> from optuna.distributions import FloatDistribution
        >>> space = {"a": FloatDistribution(-7, 7)}
        >>> rows = [HistoryEntry(n, {"a": float(n)}, 1.0 if n == 0 else 0.0) for n in range(11)]
        >>> suggested_step(rows, space, direction=StudyDirection.MAXIMIZE, search_std=1.0,
        ...                widen_after=5)
        (4.0, 10)
    """
    best = best_row(rows, direction)
    if best is None:
        return search_std, 0
    since_best = sum(not row.pending and row.number > best.number for row in rows)
    if widen_after is None:
        return search_std, since_best
    widest = max(
        (float(dist.high) - float(dist.low)) / 2  # type: ignore[attr-defined]
        for dist in search_space.values()
    )
    return min(search_std * 2 ** (since_best // widen_after), max(widest, search_std)), since_best


def tried_changes(
    rows: Sequence[HistoryEntry],
    search_space: Mapping[str, BaseDistribution],
    base: Mapping[str, Any],
    *,
    limit: int,
    precision: int | None,
    function: str,
) -> list[str]:
    """The tried points nearest ``base``, written as the changes that reach them from it.

    A small model cannot subtract a history row from the best point reliably, so the changes it
    already tried from there, and what they gave, are spelled out in its own answer's terms.
    Nearest first (by the largest difference over the parameters, then trial number); ``base``
    itself is left out.

    Example:
        >>> from optuna.distributions import FloatDistribution
        >>> space = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}
        >>> rows = [HistoryEntry(0, {"a": 0.0, "b": 6.0}, 90.0),
        ...         HistoryEntry(1, {"a": 0.5, "b": 5.0}, 71.25),
        ...         HistoryEntry(2, {"a": -3.0, "b": 1.0}, None)]
        >>> for line in tried_changes(rows, space, {"a": 0.0, "b": 6.0}, limit=2, precision=4,
        ...                           function="f(a,b)"):
        ...     print(line)
        change_a: 0.5; change_b: -1; f(a,b): 71.25
        change_a: -3; change_b: -5; f(a,b): pending
    """
    if limit <= 0:
        return []
    names = list(search_space)

    def changes(row: HistoryEntry) -> list[float]:
        return [float(row.params[name]) - float(base[name]) for name in names]

    nearby = []
    for row in rows:
        if any(row.params.get(name) is None for name in names):
            continue
        steps = changes(row)
        distance = max(abs(step) for step in steps)
        if distance > 0:
            nearby.append((distance, row.number, steps, row))
    nearby.sort(key=lambda item: item[:2])
    lines = []
    for _, _, steps, row in nearby[:limit]:
        value = "pending" if row.value is None else format_number(row.value, precision)
        parts = [
            f"{show_name(STEP_PREFIX + name)}: {_change_text(step, search_space[name], precision)}"
            for name, step in zip(names, steps, strict=True)
        ]
        lines.append("; ".join([*parts, f"{function}: {value}"]))
    return lines


def _change_text(step: float, distribution: BaseDistribution, precision: int | None) -> str:
    """A change as the prompt shows it: with the parameter's decimals, so that ``6.1 - 5.1``
    reads ``1`` and not ``0.9999999999999996``."""
    if precision is None:
        step = float(f"{step:.12g}")
    text = format_param(step, distribution, precision)
    return "0" if text in ("-0", "-0.0") else text


def answer_examples(
    search_space: Mapping[str, BaseDistribution], *, reasoning: bool = True
) -> tuple[str, str]:
    """The answer shapes the template shows: ``("a: <number>, b: <number>", '{"a": ...}')``.

    The JSON example's reasoning key is :func:`~optuna_llm_sampler._answer.reasoning_key`'s (not
    ``"reasoning"`` when a parameter has that name), left out without ``reasoning``; choices
    that hold commas or quotes are shown as JSON strings, as the answer may write them.

    Example:
        >>> answer_examples({"a": FloatDistribution(-7, 7)})
        ('a: <number>', '{"a": <number>, "reasoning": "<one sentence>"}')
    """
    text_parts, json_parts = [], []
    for name, dist in search_space.items():
        key = json.dumps(name, ensure_ascii=False)
        if isinstance(dist, CategoricalDistribution):
            shown = ", ".join(show_choice(c) for c in dist.choices)
            text_parts.append(f"{show_name(name)}: <one of {shown}>")
            json_parts.append(f"{key}: <one of the choices>")
        elif isinstance(dist, IntDistribution):
            text_parts.append(f"{show_name(name)}: <integer>")
            json_parts.append(f"{key}: <integer>")
        else:
            text_parts.append(f"{show_name(name)}: <number>")
            json_parts.append(f"{key}: <number>")
    if reasoning:
        json_parts.append(f'"{reasoning_key(search_space)}": "<one sentence>"')
    return ", ".join(text_parts), "{" + ", ".join(json_parts) + "}"


def compact_example(names: Sequence[str], n_candidates: int, *, reasoning: bool = False) -> str:
    """The compact answer's shape: the values alone, in the order of ``names``.

    Example:
        >>> compact_example(["a", "b"], 2)
        '[[a, b], [a, b]]'
        >>> compact_example(["a"], 1, reasoning=True)
        '{"candidates": [[a]], "reasoning": "<a few words>"}'
    """
    point = "[" + ", ".join(show_name(name) for name in names) + "]"
    points = "[" + ", ".join([point] * n_candidates) + "]"
    if not reasoning:
        return points
    return f'{{"candidates": {points}, "{REASONING_KEY}": "<a few words>"}}'


# Every variable build_context defines; template_vars may not redefine them.
CONTEXT_VARIABLES = frozenset(
    {
        "params",
        "param_names",
        "function",
        "search_space_text",
        "history",
        "history_table",
        "pending_table",
        "n_history_shown",
        "n_history_total",
        "n_pending",
        "best",
        "history_style",
        "history_header",
        "hints",
        "n_candidates",
        "least_explored",
        "step_base",
        "step_base_line",
        "step_tried",
        "step_size",
        "step_since_best",
        "step_number",
        "budget",
        "search_std",
        "expected_optimum",
        "task_description",
        "direction",
        "extremum",
        "answer_format",
        "text_example",
        "json_example",
        "compact_example",
        "compact_point",
        "reasoning",
        "reasoning_key",
    }
)


def build_context(
    *,
    search_space: Mapping[str, BaseDistribution],
    rows: Sequence[HistoryEntry],
    n_rows_total: int,
    direction: StudyDirection,
    step_number: int,
    budget: int | None,
    search_std: float | None,
    expected_optimum: float | None,
    task_description: str | None,
    answer_format: AnswerFormat,
    precision: int | None,
    extra: Mapping[str, Any] | None = None,
    lines: Sequence[str] | None = None,
    history_style: HistoryStyle = "csv",
    hints: bool = False,
    n_candidates: int = 1,
    step_base: Mapping[str, Any] | None = None,
    step_tried: Sequence[str] = (),
    step_size: float | None = None,
    step_since_best: int = 0,
    reasoning: bool = True,
) -> dict[str, Any]:
    """Every variable a template can use (documented in docs/prompts.md).

    ``lines`` are the rows already rendered by :func:`history_line`, when the caller caches them.
    With ``step_base`` (the point answers are relative to), the answer examples ask for
    ``change_<name>`` values and ``step_base_line`` shows the point as the history does;
    ``step_tried`` are the lines of :func:`tried_changes` the prompt lists with it, and
    ``step_size`` the step this call suggests (``search_std`` unless widened, see
    :func:`suggested_step`), ``step_since_best`` the trials since the best one. ``reasoning``
    says whether the answer carries a reason (a sentence, or a clause in the compact format).
    """
    names = list(search_space)
    function = function_label(names)
    params = [describe_param(name, dist) for name, dist in search_space.items()]
    if lines is None:
        lines = [
            history_line(
                row, search_space, precision=precision, function=function, style=history_style
            )
            for row in rows
        ]
    done_lines = [line for line, row in zip(lines, rows, strict=False) if not row.pending]
    pending_lines = [line for line, row in zip(lines, rows, strict=False) if row.pending]
    best = best_row(rows, direction)
    answer_space = search_space if step_base is None else step_space(search_space)
    key = reasoning_key(answer_space)
    text_example, json_example = answer_examples(answer_space, reasoning=reasoning)
    step_base_line = None
    if step_base is not None:
        step_base_line = ", ".join(
            f"{show_name(name)}: {format_param(step_base[name], dist, precision)}"
            for name, dist in search_space.items()
        )
    if n_candidates > 1:
        point = json_example.rsplit(", ", 1)[0] + "}" if reasoning else json_example
        json_example = f'{{"candidates": [{point}, ... ({n_candidates} different points in all)]'
        json_example += f', "{key}": "<one sentence>"}}' if reasoning else "}"
    maximize = direction == StudyDirection.MAXIMIZE
    numeric = [p for p in params if p["kind"] != "categorical"]
    same_box = (
        len(numeric) == len(params)
        and len({(p["low"], p["high"], p["log"], p["step"], p["kind"]) for p in params}) == 1
        and params[0]["kind"] == "float"
        and not params[0]["log"]
        and params[0]["step"] is None
    )
    if same_box:
        space_text = f"Search between {_bound(params[0]['low'])} and {_bound(params[0]['high'])}."
    else:
        space_text = "Search within these ranges:\n" + "\n".join(
            f"- {p['description']}" for p in params
        )
    context: dict[str, Any] = {
        "params": params,
        "param_names": names,
        "function": function,
        "search_space_text": space_text,
        "history": [
            {
                "number": row.number,
                "params": dict(row.params),
                "value": row.value,
                "pending": row.pending,
                "line": line,
            }
            for row, line in zip(rows, lines, strict=False)
        ],
        "history_table": "\n".join(done_lines),
        "pending_table": "\n".join(pending_lines),
        "n_history_shown": len(done_lines),
        "n_history_total": n_rows_total,
        "n_pending": len(pending_lines),
        "best": None
        if best is None
        else {
            "params": dict(best.params),
            "value": best.value,
            "line": history_line(
                best, search_space, precision=precision, function=function, style="tutorial"
            ),
        },
        "history_style": history_style,
        "history_header": history_header(names, function, history_style),
        "hints": hints,
        "n_candidates": n_candidates,
        "least_explored": least_explored(rows, search_space),
        "step_base": None if step_base is None else dict(step_base),
        "step_base_line": step_base_line,
        "step_tried": list(step_tried) if step_base is not None else [],
        "step_size": search_std if step_size is None else step_size,
        "step_since_best": step_since_best,
        "step_number": step_number,
        "budget": budget,
        "search_std": search_std,
        "expected_optimum": None if expected_optimum is None else _bound(expected_optimum),
        "task_description": task_description,
        "direction": "maximize" if maximize else "minimize",
        "extremum": "maximum" if maximize else "minimum",
        "answer_format": answer_format,
        "text_example": text_example,
        "json_example": json_example,
        "compact_example": compact_example(list(answer_space), n_candidates, reasoning=reasoning),
        "compact_point": compact_example(list(answer_space), 1)[1:-1],
        "reasoning": reasoning,
        "reasoning_key": REASONING_KEY if answer_format == "compact" else key,
    }
    if extra:
        clash = set(extra) & CONTEXT_VARIABLES
        if clash:
            raise ValueError(f"template_vars may not redefine {sorted(clash)}.")
        context.update(extra)
    return context


def render_prompt(template: jinja2.Template, context: Mapping[str, Any]) -> list[Message]:
    """Render the template into chat messages.

    The rendered text is one user message, as in the tutorial. A template may start a system
    message with a line ``[system]`` and the user message with a line ``[user]``.

    Raises:
        ValueError: The template uses a variable the context does not define, or fails otherwise
            (an expression that raises, such as ``{{ budget + 'x' }}``).
    """
    try:
        text = template.render(**context)
    except jinja2.UndefinedError as error:
        raise ValueError(
            f"the prompt template uses an undefined variable ({error.message}); "
            "see docs/prompts.md for the variables a template can use."
        ) from error
    except Exception as error:
        raise ValueError(
            f"the prompt template fails to render ({type(error).__name__}: {error}); "
            "fix the template (docs/prompts.md lists its variables)."
        ) from error
    text = text.strip("\n")
    if text.startswith("[system]\n") and "\n[user]\n" in text:
        system, user = text[len("[system]\n") :].split("\n[user]\n", 1)
        return [Message("system", system.strip("\n")), Message("user", user.strip("\n"))]
    return [Message("user", text)]


def feedback_message(error: str, context: Mapping[str, Any]) -> Message:
    """The message that re-asks after an unusable answer, with the problem named (at most
    1500 characters of it: the problems of a hundred candidates are not all sent back)."""
    if len(error) > _MAX_FEEDBACK_CHARS:
        error = error[: _MAX_FEEDBACK_CHARS - 1] + "…"
    reason = context.get("reasoning", True)
    if context["answer_format"] == "compact":
        shape = f"JSON {context['compact_example']}, different points"
    elif context["answer_format"] == "json":
        shape = f"a JSON object {context['json_example']}"
    elif context.get("n_candidates", 1) > 1:
        k = context["n_candidates"]
        shape = f"lines 1 to {k} each '{context['text_example']}' ({k} different points)"
        if reason:
            shape += f", line {k + 1} one sentence explaining your choice"
    else:
        shape = f"line 1 '{context['text_example']}'"
        if reason:
            shape += ", line 2 one sentence explaining your choice"
    return Message(
        "user",
        f"Your answer could not be used: {error}\nReply again with {shape}. "
        "Do not provide any additional texts.",
    )
