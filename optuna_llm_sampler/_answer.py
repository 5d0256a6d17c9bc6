"""Answer text -> raw values: the tutorial's two lines, JSON, and the JSON schemas asked for.

Pure functions. :func:`parse_answer` reads what real models write (the tutorial's two lines, JSON,
code fences, ``<think>`` blocks, text around the answer); turning the raw values into values
Optuna accepts is :mod:`optuna_llm_sampler._space`'s job.

Whatever the text, parsing returns values or raises :class:`AnswerError`, and its work is linear
in the text's length: a model's answer is untrusted input, and one trial must not hang on it.
Every scan is a single pass (regular expressions with bounded repetitions, a bracket matcher,
``str.find``); JSON is decoded only inside balanced brackets at most :data:`_MAX_START_DEPTH`
deep, so no character is decoded more than that many times, and never deeper than
:data:`_MAX_DEPTH` (the decoder recurses).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
import functools
import json
import re
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution


REASONING_KEY = "reasoning"
# Used in this order when a parameter already has the name (case and spaces aside).
_REASONING_KEYS = ("reasoning", "reason", "explanation", "rationale")
_MAX_REASONING_CHARS = 300
# The schema asks for one sentence: a local model spends most of a call generating tokens.
_SCHEMA_REASONING_CHARS = 160
# The compact format's reason, when asked for: a clause (~12 tokens), not a sentence.
COMPACT_REASONING_CHARS = 60
# Unambiguous (``\d+(?:\.\d*)?`` and not ``\d+\.?\d*``): a long digit run followed by a letter
# backtracks once per digit instead of once per way to split the run.
NUMBER_PATTERN = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
# Answers longer than this are cut before parsing (the head and the tail are kept: an answer
# comes first, or after a model's <think> block).
MAX_ANSWER_CHARS = 64_000
_HEAD_SHARE = 4  # a quarter of the kept characters from the head, the rest from the tail
# What the conversation record keeps of an answer, and what a re-ask sends back of it.
EXCERPT_CHARS = 4_000
# Brackets nested deeper than this are junk: the spans holding them are never decoded.
_MAX_DEPTH = 64
# Objects are looked for at most this deep inside other brackets (bounds the decoding work).
_MAX_START_DEPTH = 8
# A name is looked for at its first few mentions on a line: a line holding thousands of them
# is junk, and reading a word after each would be quadratic.
_MAX_MENTIONS = 20
# Longest word value read after a name (a categorical choice), in characters.
_MAX_WORD_CHARS = 1_000
# What the text format cannot carry in a name: the characters that delimit it, quotes,
# markdown emphasis, and line breaks or other control characters.
_TEXT_UNSAFE_NAME = re.compile(r"[,;:=：\"'`*\x00-\x1f\x7f]|^\s|\s$")
_NUMBER_AT = re.compile(NUMBER_PATTERN + r"(?![\w.])")
_DECIMAL_COMMA = re.compile(r",\d+(?:[.,]\d+)*")
_DECORATION = re.compile(r"[*_`'\"]{0,3}")
_NEXT_ASSIGNMENT = re.compile(r"(?<!\s)\s+[^\s:=：]+\s{0,8}[:=：]")
_THINK_TAG = re.compile(r"<(/?)think>", re.IGNORECASE)
_FENCE_TAG = re.compile(r"[A-Za-z]{0,20}[ \t]{0,8}\n")
_JSON_TOKEN = re.compile(r'[\[\]{}"\\\n]')
_CLOSERS = {"}": "{", "]": "["}


class AnswerError(ValueError):
    """An answer the sampler cannot use; its message is shown to the LLM when re-asking."""


@dataclass(frozen=True)
class ParsedAnswer:
    """What an answer said: raw values by parameter name, and the model's reason."""

    values: dict[str, Any]
    reasoning: str


def reasoning_key(names: Iterable[str]) -> str:
    """The answer's key for the model's reason: ``"reasoning"``, unless a parameter is called
    that (case and spaces aside), then the first free one of ``reason``, ``explanation``, ...

    Example:
        >>> reasoning_key(["a", "b"]), reasoning_key(["reasoning", "Reason"])
        ('reasoning', 'explanation')
    """
    taken = {_norm(name) for name in names}
    for key in _REASONING_KEYS:
        if key not in taken:
            return key
    key = REASONING_KEY
    while _norm(key) in taken:
        key = f"_{key}"
    return key


def text_safe_name(name: str) -> bool:
    """Whether the tutorial's text format (``name: value, ...``) can carry a parameter name.

    Names with a comma, semicolon, colon, equals sign, quote, backtick, asterisk, line break, or
    space at either end cannot be told apart from the text around them; the sampler asks for
    JSON instead.

    Example:
        >>> text_safe_name("learning rate"), text_safe_name("a:b"), text_safe_name("x\\ny")
        (True, False, False)
    """
    return bool(name) and _TEXT_UNSAFE_NAME.search(name) is None


def cut_answer(text: str, limit: int = MAX_ANSWER_CHARS) -> tuple[str, int]:
    """An answer cut to ``limit`` characters for parsing, and how many characters were cut.

    The first quarter and the last three quarters of the kept characters are the answer's head
    and tail: a model writes its answer first, or last after a ``<think>`` block.

    Example:
        >>> text, cut = cut_answer("a: 1, b: 2" + "x" * 100, limit=40)
        >>> text[:10], len(text), cut
        ('a: 1, b: 2', 41, 70)
    """
    if len(text) <= limit:
        return text, 0
    head = limit // _HEAD_SHARE
    return text[:head] + "\n" + text[len(text) - (limit - head) :], len(text) - limit


def answer_excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """An answer as the conversation record keeps it and a re-ask quotes it: whole when short,
    else its head and tail around a note of how much was left out.

    Example:
        >>> answer_excerpt("a" * 10 + "b" * 10, limit=10)
        'aaaaa\\n[… 10 characters left out …]\\nbbbbb'
    """
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = text[len(text) - (limit - head) :]
    return f"{text[:head]}\n[… {len(text) - limit} characters left out …]\n{tail}"


def build_json_schema(search_space: Mapping[str, BaseDistribution]) -> dict[str, Any]:
    """The JSON schema of an answer: one property per parameter plus the reasoning key
    (``"reasoning"``, or another one when a parameter has that name: :func:`reasoning_key`).

    Example:
        >>> build_json_schema({"a": FloatDistribution(-7, 7)})["properties"]["a"]
        {'type': 'number', 'minimum': -7.0, 'maximum': 7.0}
    """
    properties: dict[str, Any] = {}
    for name, dist in search_space.items():
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
    key = reasoning_key(search_space)
    properties[key] = {"type": "string", "maxLength": _SCHEMA_REASONING_CHARS}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def build_compact_schema(
    search_space: Mapping[str, BaseDistribution],
    n_candidates: int,
    *,
    decimals: Mapping[str, int] | None = None,
    reasoning: bool = False,
) -> dict[str, Any]:
    """The JSON schema of a compact answer: ``n_candidates`` points, each the values alone in
    the order of ``search_space`` (``[[0.5, -1], [1.2, 0.3]]``), and with ``reasoning`` an object
    ``{"candidates": [...], "reasoning": "<a clause>"}``.

    ``decimals`` (per name) becomes ``multipleOf`` ``10**-decimals`` on floats: llama.cpp's
    client turns it into a grammar that writes at most that many decimals. Each position carries
    its name as ``title`` (grammars ignore it), so a reader of the schema alone, such as the
    no-LLM control, knows which value is which.

    Example:
        >>> build_compact_schema({"a": FloatDistribution(-7, 7)}, 2)["items"]["prefixItems"]
        [{'type': 'number', 'minimum': -7.0, 'maximum': 7.0, 'title': 'a'}]
    """
    named = build_json_schema(search_space)["properties"]
    items = []
    for name in search_space:
        item = {**named[name], "title": name}
        places = (decimals or {}).get(name)
        if item.get("type") == "number" and places is not None:
            item["multipleOf"] = 10.0**-places
        items.append(item)
    point = {
        "type": "array",
        "prefixItems": items,
        "items": False,
        "minItems": len(items),
        "maxItems": len(items),
    }
    points = {"type": "array", "items": point, "minItems": n_candidates, "maxItems": n_candidates}
    if not reasoning:
        return points
    return {
        "type": "object",
        "properties": {
            "candidates": points,
            REASONING_KEY: {"type": "string", "maxLength": COMPACT_REASONING_CHARS},
        },
        "required": ["candidates", REASONING_KEY],
        "additionalProperties": False,
    }


def build_candidates_schema(
    search_space: Mapping[str, BaseDistribution], n_candidates: int
) -> dict[str, Any]:
    """The JSON schema of an answer with ``n_candidates`` proposals and one reasoning."""
    point = build_json_schema(search_space)
    key = reasoning_key(search_space)
    del point["properties"][key]
    point["required"].remove(key)
    return {
        "type": "object",
        "properties": {
            "candidates": {
                "type": "array",
                "items": point,
                "minItems": n_candidates,
                "maxItems": n_candidates,
            },
            key: {"type": "string", "maxLength": _SCHEMA_REASONING_CHARS},
        },
        "required": ["candidates", key],
        "additionalProperties": False,
    }


def parse_answer(text: str, names: Iterable[str]) -> ParsedAnswer:
    """Find a value for every name in an answer.

    Tries, in order: a JSON object holding every name (the last one, so reasoning written before
    the answer is skipped), the first line that assigns every name (``a: 1.5, b: -2``, ``a = 1.5``,
    ``**a**: 1.5``), and assignments spread over several lines. Names match exactly first; in
    another case or with other spacing only where that leaves no doubt (not with parameters ``a``
    and ``A``). A value may be a JSON string (``opt: "x, y"``), for choices holding commas.

    Raises:
        AnswerError: Some names have no value; the message says which and how to answer.

    Example:
        >>> parse_answer("a: 1.5, b: -2.\\nCloser to the best.", ["a", "b"]).values
        {'a': '1.5', 'b': '-2.'}
    """
    names = list(names)
    if not isinstance(text, str) or not text.strip():
        raise AnswerError("the answer was empty.")
    key = reasoning_key(names)
    cleaned = _strip_think(text)
    found: ParsedAnswer | None = None
    for obj in _json_values(cleaned, "{"):
        for item in _dicts(obj):
            values = _match_keys(item, names, key)
            if values is not None:
                reasoning = _json_reasoning(item, names, key)
                found = ParsedAnswer(values, _reasoning([reasoning]) if reasoning else "")
    if found is not None:
        return found
    lines = _unfence(cleaned).splitlines()
    matcher = _Names(names)
    assigned: list[tuple[int, dict[str, str]]] = []
    for index, line in enumerate(lines):
        values = matcher.assignments(line)
        if len(values) == len(names):
            after = [x for x in lines[index + 1 :] if x.strip()]
            rest = after or [x for x in lines[:index] if x.strip()]
            return ParsedAnswer(values, _reasoning(rest))
        if values:
            assigned.append((index, values))
    # Spread over lines: each name's value from the first line that assigns it.
    values = {}
    used: set[int] = set()
    for index, on_line in assigned:
        for name, value in on_line.items():
            if name not in values:
                values[name] = value
                used.add(index)
    if len(values) == len(names):
        rest = [x for i, x in enumerate(lines) if i not in used and x.strip()]
        return ParsedAnswer(values, _reasoning(rest))
    missing = [name for name in names if name not in values]
    raise AnswerError(
        f"no value found for {', '.join(missing)}. Write every parameter as 'name: value'."
    )


def parse_candidates(
    text: str, names: Iterable[str], *, limit: int | None = None, positional: bool = False
) -> list[ParsedAnswer]:
    """Every proposal in an answer that lists several: ``{"candidates": [{...}, ...]}``, a JSON
    array of objects, several JSON objects, or one ``a: 1, b: 2`` line per candidate.

    With ``positional`` (the compact format), points written as the values alone in the order
    of ``names`` come first: ``[[1, 2], [3, 4]]``, ``{"candidates": [[1, 2]], ...}``, or one
    ``[1, 2]``; named forms are still read when there are none.

    The answer's reasoning (the reasoning key, or the text lines that are not candidates) is
    given to every candidate. ``limit`` keeps the first candidates only.

    Raises:
        AnswerError: The answer holds no complete candidate.

    Example:
        >>> [c.values for c in parse_candidates("a: 1\\na: 2\\nTwo steps.", ["a"])]
        [{'a': '1'}, {'a': '2'}]
        >>> [c.values for c in parse_candidates("[[1, 2.5]]", ["a", "b"], positional=True)]
        [{'a': 1, 'b': 2.5}]
    """
    names = list(names)
    if not isinstance(text, str) or not text.strip():
        raise AnswerError("the answer was empty.")
    key = reasoning_key(names)
    most = limit if limit is not None else -1
    cleaned = _strip_think(text)
    if positional:
        by_position = _positional(cleaned, names, most)
        if by_position:
            return by_position
    found: list[ParsedAnswer] = []
    reasoning = ""
    for obj in _json_values(cleaned, "{["):
        listed_in = obj.get("candidates") if isinstance(obj, dict) else obj
        listed = isinstance(listed_in, list)
        if isinstance(obj, dict):
            said = _json_reasoning(obj, names, key)
            if said:
                reasoning = _reasoning([said])
        for item in listed_in if listed else [obj]:  # type: ignore[union-attr]
            if isinstance(item, dict) and len(found) != most:
                values = _match_keys(item, names, key)
                if values is not None:
                    found.append(ParsedAnswer(values, ""))
        if found and (listed or len(found) == most):
            break
    if not found:
        matcher = _Names(names)
        prose: list[str] = []
        for line in _unfence(cleaned).splitlines():
            values = matcher.assignments(line)
            if len(values) == len(names):
                if len(found) != most:
                    found.append(ParsedAnswer(values, ""))
            elif line.strip() and len(prose) < 50:
                prose.append(line)
        reasoning = _reasoning(prose)
    if not found:
        raise AnswerError(
            "no complete candidate found. Write each candidate with every parameter as "
            "'name: value'."
        )
    return [ParsedAnswer(c.values, reasoning) for c in found]


def _positional(text: str, names: list[str], most: int) -> list[ParsedAnswer]:
    """The points of the first JSON value that lists points by position (see
    :func:`parse_candidates`), each with the answer's reasoning; ``[]`` when there is none."""

    def is_point(item: Any) -> bool:
        return (
            isinstance(item, list)
            and len(item) == len(names)
            and not any(isinstance(v, (list, dict)) for v in item)
        )

    for obj in _json_values(text, "{["):
        reasoning = ""
        listed = obj
        if isinstance(obj, dict):
            listed = obj.get("candidates")
            said = obj.get(REASONING_KEY) or obj.get("reason")
            reasoning = _reasoning([str(said)]) if said else ""
        if is_point(listed):
            listed = [listed]
        if not isinstance(listed, list):
            continue
        points = [item for item in listed if is_point(item)]
        if points and len(points) == len(listed):
            kept = points if most < 0 else points[:most]
            return [ParsedAnswer(dict(zip(names, p, strict=True)), reasoning) for p in kept]
    return []


def _norm(name: str) -> str:
    """A name with case and spaces ignored."""
    return "".join(str(name).split()).lower()


def _match_keys(obj: Mapping[Any, Any], names: list[str], key: str) -> dict[str, Any] | None:
    """A value for every name from a JSON object, or ``None``.

    Keys equal to a name match it. A name left without one matches a key in another case or
    spacing only when that key is the one left with this form and no other name left has it
    (``{"a": 0.1, "A": 0.9}`` gives ``a=0.1, A=0.9``).
    """
    values: dict[str, Any] = {}
    remaining = []
    for name in names:
        if name in obj:
            values[name] = obj[name]
        else:
            remaining.append(name)
    if not remaining:
        return values
    claimed = {*names, key}
    free: dict[str, list[Any]] = {}
    for k in obj:
        if k not in claimed:
            free.setdefault(_norm(k), []).append(k)
    forms = Counter(_norm(name) for name in remaining)
    for name in remaining:
        form = _norm(name)
        keys = free.get(form, [])
        if forms[form] != 1 or len(keys) != 1:
            return None
        values[name] = obj[keys[0]]
    return values


def _json_reasoning(obj: Mapping[Any, Any], names: list[str], key: str) -> str:
    if obj.get(key):
        return str(obj[key])
    taken = {_norm(name) for name in names}
    wanted = {_norm(key)} | ({"reason", "reasoning"} - taken)
    for k, value in obj.items():
        if k not in names and _norm(k) in wanted and value:
            return str(value)
    return ""


def _dicts(obj: Any) -> list[dict[Any, Any]]:
    return [obj] if isinstance(obj, dict) else []


def _parse_int(digits: str) -> int | float:
    # Python refuses int() of more than 4300 digits (a ValueError inside the decoder); a number
    # that long is no parameter value anyway, and as a float it is reported as not finite.
    return int(digits) if len(digits) <= 400 else float(digits)


_DECODER = json.JSONDecoder(parse_int=_parse_int)


def _json_values(text: str, openers: str) -> list[Any]:
    """The JSON values of the balanced brackets in ``text`` that open with one of ``openers``,
    in the order they open: nested ones too, down to :data:`_MAX_START_DEPTH`."""
    values = []
    for start, end in _bracket_spans(text):
        if text[start] not in openers:
            continue
        try:
            value, _ = _DECODER.raw_decode(text[start:end])
        except (ValueError, RecursionError):
            continue
        values.append(value)
    return values


def _bracket_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every balanced ``{...}`` or ``[...]`` worth decoding, by start.

    One pass over the brackets and quotes. Inside brackets, double-quoted strings (with their
    backslash escapes) are skipped as JSON does; a line break ends one (JSON allows none), so a
    stray quote cannot hide the rest of the answer. A closer of the wrong kind ends every open
    bracket (none of them is JSON). Spans holding brackets nested deeper than :data:`_MAX_DEPTH`
    and spans opening deeper than :data:`_MAX_START_DEPTH` are left out.
    """
    spans: list[tuple[int, int]] = []
    stack: list[tuple[str, int]] = []
    poisoned = 0  # the open brackets below this stack index hold brackets nested too deep
    in_string = False
    skip_to = -1
    for match in _JSON_TOKEN.finditer(text):
        pos = match.start()
        if pos < skip_to:
            continue
        char = text[pos]
        if in_string:
            if char == "\\":
                skip_to = pos + 2
            elif char in '"\n':
                in_string = False
            continue
        if char in "{[":
            stack.append((char, pos))
            if len(stack) > _MAX_DEPTH:
                poisoned = len(stack)
        elif char in "}]":
            if not stack:
                continue
            opener, start = stack.pop()
            if opener != _CLOSERS[char]:
                stack.clear()
                poisoned = 0
                continue
            depth = len(stack)
            if depth < poisoned:
                poisoned = depth
                continue
            if depth < _MAX_START_DEPTH:
                spans.append((start, pos + 1))
        elif char == '"' and stack:
            in_string = True
    spans.sort()
    return spans


def _strip_think(text: str) -> str:
    """The text without its ``<think>...</think>`` blocks; a ``</think>`` without an opening tag
    ends reasoning that started with the answer, so what comes before it goes too. An unclosed
    ``<think>`` stays (the model may have been cut off after answering inside it)."""
    kept: list[str] = []
    pos = 0
    opened: int | None = None
    for match in _THINK_TAG.finditer(text):
        closing = bool(match.group(1))
        if opened is None and not closing:
            kept.append(text[pos : match.start()])
            opened = match.start()
        elif closing:
            if opened is None:
                kept.clear()
            opened = None
            pos = match.end()
    kept.append(text[pos if opened is None else opened :])
    return "".join(kept)


def _unfence(text: str) -> str:
    """The text with each pair of code fences removed (and a language tag after the first)."""
    parts: list[str] = []
    pos = 0
    while True:
        opening = text.find("```", pos)
        if opening < 0:
            break
        closing = text.find("```", opening + 3)
        if closing < 0:
            break
        body = opening + 3
        tag = _FENCE_TAG.match(text, body, closing)
        parts.append(text[pos:opening])
        parts.append(text[tag.end() if tag else body : closing])
        pos = closing + 3
    parts.append(text[pos:])
    return "".join(parts)


@functools.lru_cache(maxsize=1024)
def _head(name: str, exact: bool) -> re.Pattern[str]:
    """``name`` then ``:``, ``=`` or ``：``, with markdown emphasis or quotes around the name."""
    parts = [name] if exact else name.split()
    body = r"\s{0,3}".join(re.escape(part) for part in parts)
    pattern = (
        r"(?<![\w.])[*_`'\"]{0,3}(?P<name>" + body + r")[*_`'\"]{0,3}\s{0,8}(?::|=|：)\s{0,8}"
    )
    return re.compile(pattern, 0 if exact else re.IGNORECASE)


def _occurrences(outer: str, inner: str) -> list[int]:
    found, at = [], outer.find(inner)
    while at >= 0:
        found.append(at)
        at = outer.find(inner, at + 1)
    return found


class _Names:
    """The heads to look for, per name: exact, then loose (case, spaces) where unambiguous."""

    def __init__(self, names: list[str]) -> None:
        forms = Counter(_norm(name) for name in names)
        # Per name: (head, the names written around it, the text a line must hold to match).
        self.heads: dict[str, list[tuple[re.Pattern[str], list[tuple[str, int]], str]]] = {}
        for name in names:
            # Other names written around this one (``a_`` around ``a``, since ``_`` may be
            # markdown emphasis): a mention of one of them is not a mention of this name.
            around = [(o, at) for o in names if o != name for at in _occurrences(o, name)]
            heads = [(_head(name, True), around, name.lower())]
            if forms[_norm(name)] == 1 and name.split():
                lowered = name.lower()
                loose = [
                    (o.lower(), at)
                    for o in names
                    if o != name
                    for at in _occurrences(o.lower(), lowered)
                ]
                heads.append((_head(name, False), loose, name.split()[0].lower()))
            self.heads[name] = heads
        # One pass over a line finds the names it mentions (overlapping, longest first), so a
        # line costs its length, not its length times the number of names. Names beyond ASCII
        # are always tried: their case folding is not plain lowering.
        keys = sorted(
            {key for heads in self.heads.values() for *_, key in heads if key.isascii()},
            key=len,
            reverse=True,
        )
        self._mentioned = re.compile(
            "(?=(" + "|".join(map(re.escape, keys)) + "))" if keys else "(?!)", re.IGNORECASE
        )

    def assignments(self, line: str) -> dict[str, str]:
        """The values ``line`` assigns, by name."""
        values: dict[str, str] = {}
        if not any(sep in line for sep in ":=："):
            return values
        mentioned = {text.lower() for text in self._mentioned.findall(line)}
        for name, heads in self.heads.items():
            for head, around, key in heads:
                if key.isascii() and key not in mentioned:
                    continue
                exact = head.flags & re.IGNORECASE == 0
                value = _value_after(line, head, around, exact=exact)
                if value is not None:
                    values[name] = value
                    break
        return values


def _value_after(
    line: str, head: re.Pattern[str], around: list[tuple[str, int]], *, exact: bool
) -> str | None:
    """The value after the first mention of a name that has one: a number (the first mention
    followed by one), else a word, else ``None``. A number with a decimal comma (``1,5``) keeps
    it, so that validation can ask for a decimal point instead of reading ``1``."""
    word: str | None = None
    for count, match in enumerate(head.finditer(line)):
        if count == _MAX_MENTIONS:
            break
        start = match.start("name")
        if any(_mentions(line, other, start - at, exact) for other, at in around):
            continue
        pos = match.end()
        if line.startswith('"', pos):
            try:
                quoted, _ = _DECODER.raw_decode(line, pos)
            except (ValueError, RecursionError):
                quoted = None
            if isinstance(quoted, str):
                return quoted
        pos = _DECORATION.match(line, pos).end()  # type: ignore[union-attr]
        number = _NUMBER_AT.match(line, pos)
        if number:
            comma = _DECIMAL_COMMA.match(line, number.end())
            return line[pos : comma.end()] if comma else number.group()
        if word is None:
            word = _word_at(line, pos)
    return word


def _mentions(line: str, other: str, at: int, exact: bool) -> bool:
    if at < 0:
        return False
    written = line[at : at + len(other)]
    return written == other if exact else written.lower() == other


def _word_at(line: str, pos: int) -> str | None:
    """A word value: up to the next comma or semicolon, the next ``name:``, or the line's end,
    without quotes or emphasis around it."""
    if pos >= len(line) or line[pos] in ",;*`'\"" or line[pos].isspace():
        return None
    segment = line[pos : pos + _MAX_WORD_CHARS]
    stop = min((i for i in (segment.find(","), segment.find(";")) if i >= 0), default=None)
    if stop is not None:
        segment = segment[:stop]
    after = _NEXT_ASSIGNMENT.search(segment)
    if after is not None:
        segment = segment[: after.start()]
    value = segment.rstrip().rstrip("*_`'\" \t")
    if not value or any(c in value for c in "*`'\""):
        return None
    return value.strip()


def _reasoning(lines: list[str]) -> str:
    parts: list[str] = []
    size = 0
    for line in lines:
        if line.strip():
            parts.append(line.strip())
            size += len(parts[-1])
            if size > 4 * _MAX_REASONING_CHARS:  # the rest would be cut anyway
                break
    text = " ".join(parts)[: 4 * _MAX_REASONING_CHARS]
    text = re.sub(r"\*\*|__", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    if text.lower().startswith(("reason:", "reasoning:", "explanation:")):
        text = text.split(":", 1)[1].strip()
    if len(text) > _MAX_REASONING_CHARS:
        text = text[: _MAX_REASONING_CHARS - 1].rstrip() + "…"
    return text
