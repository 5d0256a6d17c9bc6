"""Answer text -> raw values: the tutorial's two lines, JSON, and the JSON schemas asked for.

Pure functions. :func:`parse_answer` reads what real models write (the tutorial's two lines, JSON,
code fences, ``<think>`` blocks, text around the answer); turning the raw values into values
Optuna accepts is :mod:`optuna_llm_sampler._space`'s job.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
import json
import re
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution


REASONING_KEY = "reasoning"
_MAX_REASONING_CHARS = 300
# The schema asks for one sentence: a local model spends most of a call generating tokens.
_SCHEMA_REASONING_CHARS = 160
NUMBER_PATTERN = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[a-zA-Z]*\n?(.*?)```", re.DOTALL)


class AnswerError(ValueError):
    """An answer the sampler cannot use; its message is shown to the LLM when re-asking."""


@dataclass(frozen=True)
class ParsedAnswer:
    """What an answer said: raw values by parameter name, and the model's reason."""

    values: dict[str, Any]
    reasoning: str


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
        number = re.search(
            head + r"(?P<value>" + NUMBER_PATTERN + r")(?![\w.])", line, re.IGNORECASE
        )
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
