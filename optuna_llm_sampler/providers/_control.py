"""The no-LLM control: a client that answers the sampler's own JSON schema with random values.

An LLM set-up (prompt, history, proposal, candidates ranked by expected improvement, clipping,
hints) can do well without the model adding anything: the scaffold does the work. Its control is
the same set-up with the model replaced by :class:`RandomProposer`; the model's own contribution
is its lift over the control on the same seeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import json
import math
import threading
import time
from typing import Any

import numpy as np

from optuna_llm_sampler.providers._base import Completion
from optuna_llm_sampler.providers._base import LockedState
from optuna_llm_sampler.providers._base import Message
from optuna_llm_sampler.providers._base import ProviderConfigError
from optuna_llm_sampler.providers._base import ProviderError


#: The model string of the control (``LLMSampler(model="control")``) and its reported model.
CONTROL_MODEL = "control"
# The sampler names each change to a parameter ``x`` as ``change_x`` (StepsFromBest).
_STEP_PREFIX = "change_"
_REASON = "random"


class RandomProposer(LockedState):  # pickles with its random stream: a worker continues it
    """A client that answers like an LLM, with random values of the kind the schema asks for.

    It reads the JSON schema the sampler passes to :meth:`complete` (the LLM's own) and answers
    it, with named values or in the compact positional form (whose positions carry their names
    as ``title``): for absolute proposals, each number uniform in its ``[minimum, maximum]`` (an
    integer uniform among the integers there, a choice uniform among the ``enum``); for steps from
    the best point (every parameter named ``change_<name>`` with a range symmetric about 0), each
    change drawn from ``N(0, search_std)``, rounded to ``decimals`` and kept in its range; as many
    candidates as the schema asks for. The prompt is not read: the control knows what the
    set-up asks, never what the history shows. It costs no tokens.

    Args:
        seed: Seeds the random values; ``None`` draws fresh ones.
        search_std: The scale of a change, as the prompt's ``PromptOptions.search_std``
            suggests it to the model (a widened step is not followed: the control keeps
            ``search_std``).
        decimals: Decimals a change is rounded to (``1``: 0.1, as a model writes a change of
            about 1), or ``None`` for full precision. Absolute values keep full precision.
        runs_locally: Reported as the client's ``runs_locally``, so that
            ``LLMSampler(preset="auto")`` resolves the control's preset as it does for the
            model it stands in for (``True`` for the embedded model).
        model: The model name in completions and records.

    Example:
        .. code-block:: python

            from optuna_llm_sampler import LLMSampler
            from optuna_llm_sampler.providers import RandomProposer

            control = LLMSampler(model=RandomProposer(seed=0, runs_locally=True), seed=0)
            # the same set-up as LLMSampler(model="local", seed=0), without the model

    Raises:
        ValueError: ``search_std`` is not positive and finite, or ``decimals`` not an integer
            in ``[0, 15]`` or ``None``.
    """

    supports_schema = True

    def __init__(
        self,
        *,
        seed: int | None = None,
        search_std: float = 1.0,
        decimals: int | None = 1,
        runs_locally: bool = False,
        model: str = CONTROL_MODEL,
    ) -> None:
        if (
            isinstance(search_std, bool)
            or not isinstance(search_std, (int, float))
            or not math.isfinite(search_std)
            or search_std <= 0
        ):
            raise ValueError(f"search_std must be a positive finite number, got {search_std!r}.")
        if decimals is not None and (
            isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 15
        ):
            raise ValueError(f"decimals must be an integer in [0, 15] or None, got {decimals!r}.")
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty string, got {model!r}.")
        self.model = model
        self.runs_locally = bool(runs_locally)
        self.search_std = float(search_std)
        self.decimals = decimals
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"RandomProposer(seed={self.seed!r}, search_std={self.search_std!r}, "
            f"decimals={self.decimals!r}, runs_locally={self.runs_locally!r})"
        )

    def complete(
        self, messages: Sequence[Message], *, schema: dict[str, Any] | None = None
    ) -> Completion:
        """Answer ``schema`` with random values (``messages`` are not read).

        Raises:
            ProviderConfigError: No schema was given (the sampler asks for text only when
                ``PromptOptions(answer_format="text")``, which the control cannot answer).
            ProviderError: The schema has a shape the sampler never builds.
        """
        started = time.perf_counter()
        if schema is None:
            raise ProviderConfigError(
                "RandomProposer answers JSON schemas only; leave PromptOptions.answer_format at "
                "'auto' or set it to 'json'."
            )
        with self._lock:
            answer = self._answer(schema)
        return Completion(
            text=json.dumps(answer),
            model=self.model,
            prompt_tokens=0,
            completion_tokens=0,
            latency_s=time.perf_counter() - started,
        )

    def _answer(self, schema: Mapping[str, Any]) -> Any:
        if isinstance(schema, Mapping) and schema.get("type") == "array":
            return self._positional(schema)  # a compact answer: [[v1, v2], [v1, v2], ...]
        properties = _properties(schema)
        candidates = properties.get("candidates")
        if isinstance(candidates, Mapping) and candidates.get("type") == "array":
            if isinstance(candidates.get("items"), Mapping) and (
                candidates["items"].get("type") == "array"
            ):
                answer: dict[str, Any] = {"candidates": self._positional(candidates)}
            else:
                items = _properties(candidates.get("items"))
                count = _count(candidates)
                answer = {"candidates": [self._point(items) for _ in range(count)]}
            rest = {k: v for k, v in properties.items() if k != "candidates"}
            answer.update(self._point(rest))
            return answer
        return self._point(properties)

    def _positional(self, schema: Mapping[str, Any]) -> list[list[Any]]:
        """Points as lists of values in the schema's order; each position's ``title`` names it
        (``change_a``...), which is how the control tells steps from absolute values."""
        point = schema.get("items")
        positions = point.get("prefixItems") if isinstance(point, Mapping) else None
        if not isinstance(positions, Sequence) or isinstance(positions, str) or not positions:
            raise ProviderError("RandomProposer needs prefixItems in a positional schema.")
        named = {}
        for index, spec in enumerate(positions):
            title = spec.get("title") if isinstance(spec, Mapping) else None
            named[title if isinstance(title, str) else f"_{index}"] = spec
        if len(named) != len(positions):
            raise ProviderError("RandomProposer needs distinct titles in a positional schema.")
        return [list(self._point(named).values()) for _ in range(_count(schema))]

    def _point(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        numeric = {n: s for n, s in properties.items() if _kind(s) in ("number", "integer")}
        steps = bool(numeric) and all(
            name.startswith(_STEP_PREFIX) and _symmetric(spec) for name, spec in numeric.items()
        )
        return {name: self._value(spec, steps) for name, spec in properties.items()}

    def _value(self, spec: Any, steps: bool) -> Any:
        kind = _kind(spec)
        if kind == "enum":
            choices = list(spec["enum"])
            if not choices:
                raise ProviderError("RandomProposer cannot answer an empty enum.")
            return choices[int(self._rng.integers(len(choices)))]
        if kind == "string":
            limit = spec.get("maxLength")
            return _REASON[:limit] if isinstance(limit, int) and limit >= 0 else _REASON
        low, high = _bounds(spec)
        if kind == "integer":
            low_i, high_i = math.ceil(low), math.floor(high)
            if low_i > high_i:
                raise ProviderError(f"RandomProposer found no integer in [{low}, {high}].")
            if steps:
                whole = round(float(self._rng.normal(0.0, self.search_std)))
                return int(min(max(whole, low_i), high_i))
            return int(self._rng.integers(low_i, high_i, endpoint=True))
        if steps:
            change = float(self._rng.normal(0.0, self.search_std))
            if self.decimals is not None:
                change = round(change, self.decimals)
            return min(max(change, low), high) + 0.0  # + 0.0: no "-0.0" in the answer
        return float(self._rng.uniform(low, high))


def _count(schema: Mapping[str, Any]) -> int:
    count = schema.get("minItems", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
        raise ProviderError(f"RandomProposer cannot answer minItems={count!r}.")
    return count


def _properties(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, Mapping) or not isinstance(schema.get("properties"), Mapping):
        raise ProviderError("RandomProposer needs an object schema with properties.")
    return dict(schema["properties"])


def _kind(spec: Any) -> str:
    if not isinstance(spec, Mapping):
        raise ProviderError(f"RandomProposer cannot answer the property schema {spec!r:.80}.")
    if isinstance(spec.get("enum"), Sequence) and not isinstance(spec["enum"], str):
        return "enum"
    kind = spec.get("type")
    if kind in ("number", "integer", "string"):
        return str(kind)
    raise ProviderError(f"RandomProposer cannot answer the property schema {spec!r:.80}.")


def _bounds(spec: Mapping[str, Any]) -> tuple[float, float]:
    try:
        low, high = float(spec["minimum"]), float(spec["maximum"])
    except (KeyError, TypeError, ValueError):
        raise ProviderError("RandomProposer needs a minimum and a maximum per number.") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ProviderError(f"RandomProposer cannot draw from [{low}, {high}].")
    return low, high


def _symmetric(spec: Mapping[str, Any]) -> bool:
    try:
        low, high = _bounds(spec)
    except ProviderError:
        return False
    return low == -high
