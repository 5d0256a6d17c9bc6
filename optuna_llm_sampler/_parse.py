"""Answer text → parameters, validated against Optuna distributions.

Pure functions. :func:`parse_answer` reads what real models write (the tutorial's two lines, JSON,
code fences, ``<think>`` blocks, text around the answer); :func:`snap_params` turns raw values into
values Optuna accepts, or raises :class:`AnswerError` with a message that is fed back to the LLM.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
import json
import math
import re
from typing import Any
from typing import Literal

from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution

from optuna_llm_sampler._history import HistoryEntry


OutOfRange = Literal["reject", "clip"]

REASONING_KEY = "reasoning"
_MAX_REASONING_CHARS = 300
# The schema asks for one sentence: a local model spends most of a call generating tokens.
_SCHEMA_REASONING_CHARS = 160
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[a-zA-Z]*\n?(.*?)```", re.DOTALL)


class AnswerError(ValueError):
    """An answer the sampler cannot use; its message is shown to the LLM when re-asking."""


@dataclass(frozen=True)
class ParsedAnswer:
    """What an answer said: raw values by parameter name, and the model's reason."""

    values: dict[str, Any]
    reasoning: str


STEP_PREFIX = "change_"


def step_space(search_space: Mapping[str, BaseDistribution]) -> dict[str, BaseDistribution]:
    """The space of answers that are changes to a point: ``change_<name>`` for each parameter,
    ranging over the parameter's whole width either way (so every point stays reachable).

    Raises:
        ValueError: A parameter is categorical or log-scale, where a change has no plain meaning.

    Example:
        >>> step_space({"a": FloatDistribution(-7, 7)})
        {'change_a': FloatDistribution(high=14.0, log=False, low=-14.0, step=None)}
    """
    space: dict[str, BaseDistribution] = {}
    for name, dist in search_space.items():
        if not isinstance(dist, (FloatDistribution, IntDistribution)) or dist.log:
            raise ValueError(
                f"steps_from_best needs linear numeric parameters, but {name!r} is {dist!r}; "
                "use steps_from_best=False for this search space."
            )
        width = float(dist.high - dist.low)
        space[STEP_PREFIX + name] = FloatDistribution(-width, width)
    return space


def add_changes(base: Mapping[str, Any], answer: ParsedAnswer) -> ParsedAnswer:
    """An answer of ``change_<name>`` values turned into the point ``base + change``.

    A change that is not a number is passed on as it is, so validation names it.

    Example:
        >>> add_changes({"a": 1.0}, ParsedAnswer({"change_a": "-0.5"}, "")).values
        {'a': 0.5}
    """
    values: dict[str, Any] = {}
    for name, value in base.items():
        raw = answer.values[STEP_PREFIX + name]
        try:
            values[name] = float(value) + float(raw)
        except (TypeError, ValueError):
            values[name] = raw
    return ParsedAnswer(values, answer.reasoning)


def changes_out_of_range(
    base: Mapping[str, Any],
    answer: ParsedAnswer,
    search_space: Mapping[str, BaseDistribution],
) -> str | None:
    r"""Why an answer's changes take ``base`` out of the box, in the answer's own terms (the model
    wrote ``change_b``, so feedback about ``b`` alone would not tell it what to fix).

    Example:
        >>> problem = changes_out_of_range(
        ...     {"b": 6.5}, ParsedAnswer({"change_b": "6"}, ""), {"b": FloatDistribution(-7, 7)}
        ... )
        >>> print(problem.replace(": ", ":\n"))
        change_b=6 takes b to 12.5, outside its range [-7, 7]:
        change_b must be between -13.5 and 0.5.
    """
    problems = []
    for name, dist in search_space.items():
        assert isinstance(dist, (FloatDistribution, IntDistribution))  # step_space checked it
        raw = answer.values.get(STEP_PREFIX + name)
        try:
            value = float(base[name]) + float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue  # not a number: validation names it
        low, high = float(dist.low), float(dist.high)
        slack = 1e-9 * (high - low)
        if low - slack <= value <= high + slack or not math.isfinite(value):
            continue
        least = math.ceil(round((low - float(base[name])) * 100, 6)) / 100
        most = math.floor(round((high - float(base[name])) * 100, 6)) / 100
        change = f"{STEP_PREFIX}{name}"
        problems.append(
            f"{change}={show_value(raw)} takes {name} to {value:.4g}, outside its range "
            f"[{show_value(dist.low)}, {show_value(dist.high)}]: {change} must be between "
            f"{least:g} and {most:g}."
        )
    return " ".join(problems) or None


def build_json_schema(search_space: Mapping[str, BaseDistribution]) -> dict[str, Any]:
    """The JSON schema of an answer: one property per parameter plus ``reasoning``.

    Example:
        >>> build_json_schema({"a": FloatDistribution(-7, 7)})["properties"]["a"]
        {'type': 'number', 'minimum': -7.0, 'maximum': 7.0}
    """
    properties: dict[str, Any] = {}
    for name, dist in search_space.items():
        if name == REASONING_KEY:
            raise ValueError(f"a parameter may not be named {REASONING_KEY!r} in LLMSampler.")
        if isinstance(dist, CategoricalDistribution):
            choices = list(dist.choices)
            if all(isinstance(c, (str, int, float, bool)) or c is None for c in choices):
                properties[name] = {"enum": choices}
            else:
                properties[name] = {"enum": [str(c) for c in choices]}
        elif isinstance(dist, IntDistribution):
            properties[name] = {"type": "integer", "minimum": dist.low, "maximum": dist.high}
        elif isinstance(dist, FloatDistribution):
            properties[name] = {
                "type": "number",
                "minimum": float(dist.low),
                "maximum": float(dist.high),
            }
        else:
            raise ValueError(f"distribution of {name!r} is not supported: {dist!r}.")
    properties[REASONING_KEY] = {"type": "string", "maxLength": _SCHEMA_REASONING_CHARS}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def build_candidates_schema(
    search_space: Mapping[str, BaseDistribution], n_candidates: int
) -> dict[str, Any]:
    """The JSON schema of an answer with ``n_candidates`` proposals and one ``reasoning``."""
    point = build_json_schema(search_space)
    del point["properties"][REASONING_KEY]
    point["required"].remove(REASONING_KEY)
    return {
        "type": "object",
        "properties": {
            "candidates": {
                "type": "array",
                "items": point,
                "minItems": n_candidates,
                "maxItems": n_candidates,
            },
            REASONING_KEY: {"type": "string", "maxLength": _SCHEMA_REASONING_CHARS},
        },
        "required": ["candidates", REASONING_KEY],
        "additionalProperties": False,
    }


def parse_answer(text: str, names: Iterable[str]) -> ParsedAnswer:
    """Find a value for every name in an answer.

    Tries, in order: a JSON object holding every name (the last one, so reasoning written before
    the answer is skipped), the first line that assigns every name (``a: 1.5, b: -2``, ``a = 1.5``,
    ``**a**: 1.5``), and assignments spread over several lines. Names match case-insensitively.

    Raises:
        AnswerError: Some names have no value; the message says which and how to answer.

    Example:
        >>> parse_answer("a: 1.5, b: -2.\\nCloser to the best.", ["a", "b"]).values
        {'a': '1.5', 'b': '-2.'}
    """
    names = list(names)
    if not isinstance(text, str) or not text.strip():
        raise AnswerError("the answer was empty.")
    cleaned = _THINK.sub("", text)
    cleaned = re.sub(r"^.*?</think>", "", cleaned, flags=re.DOTALL | re.IGNORECASE)
    from_json = _parse_json(cleaned, names)
    if from_json is not None:
        return from_json
    unfenced = _FENCE.sub(lambda m: m.group(1), cleaned)
    lines = unfenced.splitlines()
    for index, line in enumerate(lines):
        values = _assignments(line, names)
        if len(values) == len(names):
            rest = [x for i, x in enumerate(lines) if i != index and x.strip()]
            after = [x for i, x in enumerate(lines) if i > index and x.strip()]
            return ParsedAnswer(values, _reasoning(after or rest))
    values = {}
    used: set[int] = set()
    for name in names:
        for index, line in enumerate(lines):
            found = _assignments(line, [name])
            if found:
                values.update(found)
                used.add(index)
                break
    if len(values) == len(names):
        rest = [x for i, x in enumerate(lines) if i not in used and x.strip()]
        return ParsedAnswer(values, _reasoning(rest))
    missing = [name for name in names if name not in values]
    raise AnswerError(
        f"no value found for {', '.join(missing)}. Write every parameter as 'name: value'."
    )


def parse_candidates(text: str, names: Iterable[str]) -> list[ParsedAnswer]:
    """Every proposal in an answer that lists several: ``{"candidates": [{...}, ...]}``, a JSON
    array of objects, several JSON objects, or one ``a: 1, b: 2`` line per candidate.

    The answer's reasoning (the ``reasoning`` key, or the text lines that are not candidates) is
    given to every candidate.

    Raises:
        AnswerError: The answer holds no complete candidate.
    """
    names = list(names)
    if not isinstance(text, str) or not text.strip():
        raise AnswerError("the answer was empty.")
    cleaned = _THINK.sub("", text)
    found: list[ParsedAnswer] = []
    reasoning = ""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", cleaned):
        try:
            obj, _ = decoder.raw_decode(cleaned, match.start())
        except json.JSONDecodeError:
            continue
        items = obj.get("candidates", obj) if isinstance(obj, dict) else obj
        if isinstance(obj, dict) and obj.get(REASONING_KEY):
            reasoning = _reasoning([str(obj[REASONING_KEY])])
        listed = isinstance(items, list)
        for item in items if listed else [items]:
            if isinstance(item, dict):
                lowered = {str(k).strip().lower(): v for k, v in item.items()}
                if all(name.lower() in lowered for name in names):
                    found.append(ParsedAnswer({n: lowered[n.lower()] for n in names}, ""))
        if found and listed:
            break
    if not found:
        lines = _FENCE.sub(lambda m: m.group(1), cleaned).splitlines()
        prose = []
        for line in lines:
            values = _assignments(line, names)
            if len(values) == len(names):
                found.append(ParsedAnswer(values, ""))
            elif line.strip():
                prose.append(line)
        reasoning = _reasoning(prose)
    if not found:
        raise AnswerError(
            "no complete candidate found. Write each candidate with every parameter as "
            "'name: value'."
        )
    return [ParsedAnswer(c.values, reasoning) for c in found]


def _parse_json(text: str, names: list[str]) -> ParsedAnswer | None:
    decoder = json.JSONDecoder()
    found: ParsedAnswer | None = None
    for match in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        lowered = {str(k).strip().lower(): v for k, v in obj.items()}
        if all(name.lower() in lowered for name in names):
            reasoning = lowered.get(REASONING_KEY, lowered.get("reason", ""))
            found = ParsedAnswer(
                {name: lowered[name.lower()] for name in names},
                _reasoning([str(reasoning)]) if reasoning else "",
            )
    return found


def _assignments(line: str, names: list[str]) -> dict[str, str]:
    values = {}
    for name in names:
        head = r"(?<![\w.])[*_`'\"]*" + re.escape(name) + r"[*_`'\"]*\s*(?::|=|：)\s*[*_`'\"]*"
        number = re.search(head + r"(?P<value>" + _NUMBER + r")(?![\w.])", line, re.IGNORECASE)
        if number:
            values[name] = number.group("value")
            continue
        word = re.search(
            head + r"(?P<value>[^,;*`'\"\s][^,;*`'\"]*?)[*_`'\"]*\s*(?=[,;]|$|\s+\S+\s*[:=])",
            line,
            re.IGNORECASE,
        )
        if word:
            values[name] = word.group("value").strip()
    return values


def _reasoning(lines: list[str]) -> str:
    text = " ".join(line.strip() for line in lines if line.strip())
    text = re.sub(r"\*\*|__", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    if text.lower().startswith(("reason:", "reasoning:", "explanation:")):
        text = text.split(":", 1)[1].strip()
    if len(text) > _MAX_REASONING_CHARS:
        text = text[: _MAX_REASONING_CHARS - 1].rstrip() + "…"
    return text


def snap_params(
    values: Mapping[str, Any],
    search_space: Mapping[str, BaseDistribution],
    *,
    out_of_range: OutOfRange = "reject",
) -> tuple[dict[str, Any], list[str]]:
    """Turn raw values into values each distribution contains.

    Numbers are read from strings (``"1e-3"``, ``"+2."``), integers rounded, steps snapped to the
    grid, categorical answers matched to a choice (case-insensitive for text). A number outside
    its range is an error with ``out_of_range="reject"`` and is moved to the nearest bound with
    ``"clip"``.

    Returns:
        The values in Optuna's external representation (``float``, ``int`` or the choice itself),
        and the names of the clipped parameters.

    Raises:
        AnswerError: A value is not a number, not finite, not a choice, or out of range.
    """
    params: dict[str, Any] = {}
    clipped: list[str] = []
    problems: list[str] = []
    for name, dist in search_space.items():
        try:
            params[name], was_clipped = _snap_value(name, values[name], dist, out_of_range)
        except AnswerError as error:
            problems.append(str(error))
            continue
        if was_clipped:
            clipped.append(name)
    if problems:
        raise AnswerError(" ".join(problems))
    return params, clipped


def _snap_value(
    name: str, raw: Any, dist: BaseDistribution, out_of_range: OutOfRange
) -> tuple[Any, bool]:
    if isinstance(dist, CategoricalDistribution):
        return _match_choice(name, raw, dist), False
    if not isinstance(dist, (FloatDistribution, IntDistribution)):
        raise AnswerError(f"{name}: unsupported distribution {dist!r}.")
    number = _to_number(name, raw)
    low, high = float(dist.low), float(dist.high)
    width = high - low
    clipped = False
    if not (low - 1e-9 * width <= number <= high + 1e-9 * width):
        if out_of_range == "reject":
            raise AnswerError(
                f"{name}={show_value(raw)} is outside its range "
                f"[{show_value(dist.low)}, {show_value(dist.high)}]."
            )
        clipped = True
    number = min(max(number, low), high)
    if isinstance(dist, IntDistribution):
        k = round((number - dist.low) / dist.step)
        value = int(dist.low + k * dist.step)
        while value > dist.high:
            value -= dist.step
        return value, clipped
    if dist.step is not None:
        k = round((number - dist.low) / dist.step)
        snapped = float(dist.low + k * dist.step)
        decimals = len(f"{dist.step:.12f}".rstrip("0").split(".")[1]) + 2
        snapped = round(snapped, decimals)
        while snapped > dist.high:
            snapped = round(snapped - dist.step, decimals)
        return snapped, clipped
    if dist.log and number <= 0:
        raise AnswerError(f"{name}={show_value(raw)} must be positive (log scale).")
    return float(number), clipped


def _to_number(name: str, raw: Any) -> float:
    if isinstance(raw, bool):
        raise AnswerError(f"{name}={raw!r} is not a number.")
    if isinstance(raw, (int, float)):
        number = float(raw)
    else:
        match = re.fullmatch(r"\s*(" + _NUMBER + r")\s*", str(raw).replace("−", "-"))
        if match is None:
            raise AnswerError(f"{name}={show_value(raw)} is not a number.")
        number = float(match.group(1))
    if not math.isfinite(number):
        raise AnswerError(f"{name}={show_value(raw)} is not a finite number.")
    return number


def _match_choice(name: str, raw: Any, dist: CategoricalDistribution) -> Any:
    for choice in dist.choices:
        if type(choice) is type(raw) and choice == raw:
            return choice
    text = str(raw).strip().strip("'\"").strip()
    for choice in dist.choices:
        if str(choice) == text:
            return choice
    for choice in dist.choices:
        if str(choice).lower() == text.lower():
            return choice
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    for choice in dist.choices:
        if isinstance(choice, (int, float)) and not isinstance(choice, bool) and choice == number:
            return choice
    options = ", ".join(str(c) for c in dist.choices)
    raise AnswerError(f"{name}={show_value(raw)} is not one of the choices ({options}).")


def show_value(value: Any) -> str:
    """A value the model wrote, as feedback quotes it: ``1.0`` as ``1``, long text cut.

    Example:
        >>> show_value(1.0), show_value(-0.5), show_value("x")
        ('1', '-0.5', 'x')
    """
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def find_duplicate(
    params: Mapping[str, Any],
    rows: Iterable[HistoryEntry],
    search_space: Mapping[str, BaseDistribution],
) -> HistoryEntry | None:
    """The first row (completed or pending) with exactly these parameter values, if any."""
    key = point_key(params, search_space)
    for row in rows:
        if all(name in row.params for name in search_space):
            try:
                if point_key(row.params, search_space) == key:
                    return row
            except ValueError:
                continue
    return None


def find_near(
    params: Mapping[str, Any],
    rows: Iterable[HistoryEntry],
    search_space: Mapping[str, BaseDistribution],
    min_distance: float,
) -> tuple[HistoryEntry, float] | None:
    """The nearest row closer than ``min_distance``, and its distance, if any.

    The distance is the largest difference over the numeric parameters (in log10 units for
    log-scale ones); rows whose categorical values differ are never near.
    """
    nearest: tuple[HistoryEntry, float] | None = None
    for row in rows:
        distance = 0.0
        for name, dist in search_space.items():
            mine, theirs = params[name], row.params.get(name)
            if isinstance(dist, CategoricalDistribution):
                if mine != theirs:
                    distance = math.inf
                    break
                continue
            if theirs is None:
                distance = math.inf
                break
            if getattr(dist, "log", False):
                mine, theirs = math.log10(mine), math.log10(theirs)
            distance = max(distance, abs(float(mine) - float(theirs)))
        if distance < min_distance and (nearest is None or distance < nearest[1]):
            nearest = (row, distance)
    return nearest


def point_key(
    params: Mapping[str, Any], search_space: Mapping[str, BaseDistribution]
) -> tuple[Any, ...]:
    """A hashable identity of a point: its values in Optuna's internal representation."""
    return tuple(dist.to_internal_repr(params[name]) for name, dist in search_space.items())
