"""The search space's geometry: raw values snapped into distributions, steps from a point,
distances and repeats.

Pure functions. :func:`snap_params` turns raw values into values Optuna accepts, or raises
:class:`~optuna_llm_sampler._answer.AnswerError` with a message that is fed back to the LLM.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
import math
import re
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution

from optuna_llm_sampler._answer import AnswerError
from optuna_llm_sampler._answer import NUMBER_PATTERN
from optuna_llm_sampler._answer import ParsedAnswer
from optuna_llm_sampler._history import HistoryEntry
from optuna_llm_sampler._options import OutOfRange


STEP_PREFIX = "change_"
_NUMBER = re.compile(r"\s*(" + NUMBER_PATTERN + r")\s*")
# A number written with a decimal comma or separators (1,5 or 1,000.5): asked again, never read
# as the digits before the comma.
_COMMA_NUMBER = re.compile(r"\s*[-+]?[\d.]+(?:,[\d.]+)+\s*")


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
                f"StepsFromBest needs linear numeric parameters, but {name!r} is {dist!r}; "
                "use proposal=AbsolutePoints() for this search space."
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
        except (TypeError, ValueError, OverflowError):
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
        except (TypeError, ValueError, OverflowError):
            continue  # not a (finite) number: validation names it
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
        if out_of_range == "reflect":
            # Mirrored at the bound it passed: a step past the edge comes back inside by as
            # much, instead of landing on the bound where earlier steps already ended.
            number = 2 * high - number if number > high else 2 * low - number
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
        try:
            number = float(raw)
        except OverflowError:  # an int of hundreds of digits
            number = math.inf
    else:
        text = str(raw).replace("−", "-") if isinstance(raw, str) else show_value(raw)
        match = _NUMBER.fullmatch(text)
        if match is None:
            if _COMMA_NUMBER.fullmatch(text):
                raise AnswerError(
                    f"{name}={show_value(raw)} is written with a comma: write numbers with a "
                    "decimal point and no separators (like 1.5)."
                )
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
    if isinstance(value, str):
        text = value[:41]
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        try:
            text = str(value)
        except ValueError:  # an int longer than Python prints
            text = "a number of too many digits"
    text = text.replace("\n", " ")
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
