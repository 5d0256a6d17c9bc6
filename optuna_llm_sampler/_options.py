"""The sampler's option groups and presets: frozen, self-validating, documented once.

Each group's docstring (its ``Attributes:`` section) is the one description of each option:
:func:`option_docs` reads it for ``optuna-llm-sampler run --help`` and for docs/options.md.

Two proposal kinds say what the LLM answers with, as NSGA-II's strategies say how children are
made: :class:`AbsolutePoints` (the next point's values, the ProPS tutorial's loop) and
:class:`StepsFromBest` (changes to the best point so far). A preset names a proposal kind with its
settings; explicit option objects win over the preset's.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from dataclasses import dataclass
from dataclasses import field
import inspect
import math
import os
import re
from types import MappingProxyType
from typing import Any
from typing import Literal


AnswerFormat = Literal["json", "text", "compact"]
HistoryMode = Literal["all", "best_recent"]
HistoryStyle = Literal["csv", "tutorial"]
OutOfRange = Literal["reject", "clip", "reflect"]
PresetName = Literal["auto", "tutorial", "guided", "advised"]

ANSWER_FORMATS = ("auto", "json", "text", "compact")
#: The history budget that follows the client's context window (see :class:`HistoryOptions`).
AUTO_HISTORY_TOKENS = "auto"
HISTORY_MODES = ("all", "best_recent")
HISTORY_STYLES = ("csv", "tutorial")
OUT_OF_RANGE = ("reject", "clip", "reflect")
PRESET_NAMES = ("auto", "tutorial", "guided", "advised")


def _one_of(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {options}, got {value!r}.")


def _positive_or_none(name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a positive number or None, got {value!r}.")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive or None, got {value}.")


def _int_at_least(name: str, value: int | None, least: int, *, none: bool = False) -> None:
    if value is None and none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        tail = " or None" if none else ""
        raise ValueError(f"{name} must be an integer >= {least}{tail}, got {value!r}.")


@dataclass(frozen=True)
class PromptOptions:
    """What the prompt tells the LLM besides the history.

    Example:
        >>> PromptOptions(task_description="f(a,b) is the mean episode reward.", budget=60).budget
        60

    Attributes:
        template: A Jinja template (source string or path to a ``.j2`` file) replacing the
            default prompt (the ProPS tutorial's); see docs/prompts.md for its variables.
        template_vars: Extra variables for a custom template.
        answer_format: ``"json"`` (a JSON object, with the provider's structured output),
            ``"text"`` (the tutorial's two lines), ``"compact"`` (the values only, by position:
            ``[[0.5, -1], ...]``, under a grammar with the prompt's decimals; a local model
            spends most of a call generating tokens) or ``"auto"`` (compact for a model that
            runs in-process, JSON when the client supports a schema, else text).
        reasoning: Whether the answer carries the model's reason: ``None`` for a one-sentence
            reason from remote models and none from local ones (measured: the small model's
            reason mostly restates numbers, and its tokens cost seconds); ``True`` asks for one
            (a short clause in the compact format), ``False`` for none.
        search_std: The exploration step the prompt suggests, or ``None`` to omit it.
        expected_optimum: A hint in the prompt ("the expected optimum value should be over 50"),
            or ``None``.
        task_description: What the parameters and the objective mean, in a sentence or two,
            shown instead of "assume no prior knowledge" (ProPS+), or ``None``.
        budget: The number of trials the study will run, told to the LLM as ``MAX_STEPS``, or
            ``None`` to leave it out.
        precision: Digits of numbers in the prompt, or ``None`` for full precision like the
            tutorial: objective values keep ``precision`` significant digits, parameters the
            decimals that give their largest bound that many (two decimals on [-7, 7] with 3).
            A proposal that equals a tried point at this precision is a repeat.
    """

    template: str | os.PathLike[str] | None = None
    template_vars: Mapping[str, Any] = field(default_factory=dict)
    answer_format: Literal["auto", "json", "text", "compact"] = "auto"
    reasoning: bool | None = None
    search_std: float | None = 1.0
    expected_optimum: float | None = None
    task_description: str | None = None
    budget: int | None = None
    precision: int | None = 3

    def __post_init__(self) -> None:
        _one_of("answer_format", self.answer_format, ANSWER_FORMATS)
        if self.reasoning not in (None, True, False):
            raise ValueError(f"reasoning must be True, False or None, got {self.reasoning!r}.")
        _positive_or_none("search_std", self.search_std)
        _int_at_least("budget", self.budget, 1, none=True)
        if self.precision is not None and (
            isinstance(self.precision, bool)
            or not isinstance(self.precision, int)
            or not 1 <= self.precision <= 17
        ):
            raise ValueError(f"precision must be between 1 and 17 or None, got {self.precision}.")
        expected = self.expected_optimum
        if expected is not None and (
            isinstance(expected, bool)
            or not isinstance(expected, (int, float))
            or not math.isfinite(expected)
        ):
            raise ValueError(
                f"expected_optimum must be a finite number or None, got {expected!r}."
            )
        if not isinstance(self.template_vars, Mapping):
            raise ValueError(
                "template_vars must be a mapping of variable names to values, "
                f"got {type(self.template_vars).__name__}."
            )
        if self.task_description is not None and not isinstance(self.task_description, str):
            raise ValueError(
                f"task_description must be a string or None, got {self.task_description!r}."
            )
        # A read-only copy: the options stay frozen even if the caller's dict changes later.
        object.__setattr__(self, "template_vars", MappingProxyType(dict(self.template_vars)))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "template_vars": dict(self.template_vars)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = {**state, "template_vars": MappingProxyType(dict(state["template_vars"]))}
        self.__dict__.update(state)


@dataclass(frozen=True)
class HistoryOptions:
    """Which trials the LLM sees, and how each is written.

    Example:
        >>> HistoryOptions(mode="best_recent", best_k=10, recent_k=10).mode
        'best_recent'

    Attributes:
        mode: ``"all"`` shows every completed trial, as the tutorial does; ``"best_recent"``
            shows the ``best_k`` best and the ``recent_k`` most recent.
        best_k: Best trials kept by ``"best_recent"``.
        recent_k: Most recent trials kept by ``"best_recent"``.
        max_tokens: A token budget for the history table; rows are admitted best and most recent
            first until it is spent, so the prompt stops growing. With ``mode="all"`` the older
            rows are chosen once every 8 trials and the newer ones appended, so the prompt's
            start stays the same from call to call (a local model re-reads only what changed;
            room for 8 rows is kept free for them). ``"auto"`` follows the
            client's context window (its ``context_window``, e.g. a local model's ``n_ctx``):
            a quarter of it, or 2048 tokens when the client does not say, so a study of any
            length fits and the sampler's own time stays below TPE's at 1,000 trials.
            ``None`` for no budget (with ``mode="all"``, the tutorial's unbounded history).
        style: ``"csv"`` rows under a header (``-0.3,2.91,12.5``, about 15 tokens for two
            parameters) or the tutorial's ``a: -0.3; b: 2.91; f(a,b): 12.5`` (about 25).
    """

    mode: HistoryMode = "all"
    best_k: int = 20
    recent_k: int = 20
    max_tokens: int | Literal["auto"] | None = "auto"
    style: HistoryStyle = "csv"

    def __post_init__(self) -> None:
        _one_of("mode", self.mode, HISTORY_MODES)
        _int_at_least("best_k", self.best_k, 0)
        _int_at_least("recent_k", self.recent_k, 0)
        if self.mode == "best_recent" and self.best_k + self.recent_k == 0:
            raise ValueError("mode='best_recent' needs best_k or recent_k > 0.")
        if self.max_tokens != AUTO_HISTORY_TOKENS:
            _int_at_least("max_tokens", self.max_tokens, 1, none=True)  # type: ignore[arg-type]
        _one_of("style", self.style, HISTORY_STYLES)


@dataclass(frozen=True)
class _Proposal:
    """What both proposal kinds share (see :class:`AbsolutePoints`)."""

    n_candidates: int = 1
    min_distance: float | None = None
    out_of_range: OutOfRange = "reject"
    hints: bool = False

    def __post_init__(self) -> None:
        _int_at_least("n_candidates", self.n_candidates, 1)
        _positive_or_none("min_distance", self.min_distance)
        _one_of("out_of_range", self.out_of_range, OUT_OF_RANGE)
        if not isinstance(self.hints, bool):
            raise ValueError(f"hints must be True or False, got {self.hints!r}.")


@dataclass(frozen=True)
class AbsolutePoints(_Proposal):
    """The LLM answers with the next point's values, as in the ProPS tutorial.

    Example:
        >>> AbsolutePoints(n_candidates=3, min_distance=0.1).n_candidates
        3

    Attributes:
        n_candidates: Ask for this many different points per call and evaluate the usable one
            with the highest expected improvement under a small Gaussian-process model of the
            history (LLAMBO-style). The LLM stays in charge: the trial always gets one of its
            candidates.
        min_distance: Treat a proposal closer than this to an evaluated or running point
            (largest difference over the numeric parameters; log10 units for log-scale ones) as
            a repeat and re-ask. ``None`` re-asks only points equal at the prompt's precision.
        out_of_range: ``"reject"`` re-asks when a value leaves its range; ``"clip"`` moves it to
            the nearest bound, ``"reflect"`` mirrors it at the bound it passed (9 in [-7, 7]
            becomes 5; past the other bound too, it stops there); both record it in
            ``llm_clipped``.
        hints: End the prompt with the best point so far and each parameter's least explored
            slice of its range (helps small models leave the region they started in).
    """


@dataclass(frozen=True)
class StepsFromBest(_Proposal):
    """The LLM answers with changes to the best point so far (``change_a``, ...).

    The trial evaluates best + change. The LLM still chooses every value (a change may reach any
    point of the box), but small models, which copy rows of the history or alter a last digit,
    then propose real steps. Linear numeric parameters only (a ``ValueError`` at the first LLM
    trial names any other).

    Example:
        >>> StepsFromBest(n_candidates=3, out_of_range="clip").n_tried_changes
        8

    Attributes:
        n_candidates: As in :class:`AbsolutePoints`: changes asked per call, the best-scored one
            evaluated.
        min_distance: As in :class:`AbsolutePoints`.
        out_of_range: As in :class:`AbsolutePoints`; with ``"clip"`` a change past a bound stops
            at the bound, with ``"reflect"`` it comes back inside by as much as it overshot.
        hints: As in :class:`AbsolutePoints`.
        n_tried_changes: How many tried points nearest the best the prompt lists as changes from
            it, with their values ("change_a: 1; change_b: 0; f(a,b): 71.2"), so the model sees
            which steps are spent without subtracting. ``0`` lists none.
        widen_after: Double the step the prompt suggests (``search_std``) for every this many
            trials completed since the best one, up to half the widest range, so a model stuck
            on a plateau looks further away. ``None`` keeps ``search_std``.
        stall_after: Once this many trials have completed since the best value last moved
            beyond the noise (1 % of the best value minus the median; all values equal counts as
            no move), give a third of the LLM's trials to a random point far from every tried
            one (the farthest of 50 uniform draws), or all of them to a base sampler in control
            (``base_sampler``, which refines a good point itself), until the best moves again:
            steps from a point on a plateau only find more plateau. ``None`` never hands a
            trial over.
    """

    n_tried_changes: int = 8
    widen_after: int | None = None
    stall_after: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _int_at_least("n_tried_changes", self.n_tried_changes, 0)
        _int_at_least("widen_after", self.widen_after, 1, none=True)
        _int_at_least("stall_after", self.stall_after, 1, none=True)


Proposal = AbsolutePoints | StepsFromBest
#: The fields both proposal kinds have, documented on :class:`AbsolutePoints`.
SHARED_PROPOSAL_FIELDS = tuple(f.name for f in dataclasses.fields(_Proposal))


@dataclass(frozen=True)
class Preset:
    """A named set-up: what the LLM answers with, and who samples the other trials.

    Example:
        >>> PRESETS["advised"].base_sampler, PRESETS["advised"].llm_share
        ('gp', 0.3)

    Attributes:
        proposal: What the LLM answers with.
        base_sampler: The Optuna sampler that samples every trial the LLM does not, by name
            (``"gp"``, ``"tpe"``, ``"cmaes"``, ``"random"``), or ``None`` for random search that
            samples only the startup trials and the fallbacks.
        llm_share: The share of trials after the startup that the LLM proposes.
    """

    proposal: Proposal
    base_sampler: str | None = None
    llm_share: float = 1.0

    def __post_init__(self) -> None:
        check_share("llm_share", self.llm_share)


def check_share(name: str, value: object) -> None:
    """A share of trials must be a number in (0, 1].

    Example:
        >>> check_share("llm_share", 0.3)
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and 0 < value <= 1)
    ):
        raise ValueError(f"{name} must be a number in (0, 1], such as 0.3; got {value!r}.")


_GUIDED = StepsFromBest(
    n_candidates=2, min_distance=0.1, out_of_range="reflect", hints=True, stall_after=10
)

# The presets. "guided" is the set-up measured with the embedded model in docs/results.md: steps
# from the best point, two candidates ranked by the small GP, changes reflected at the box,
# repeats within 0.1 re-asked, the hints, and a hand-over of a third of the trials to far random
# points when the best stalls (MountainCar's do-nothing plateau). Measured there too: the same
# set-up with the LLM replaced by random changes scores alike, so the scaffold, not the model,
# does most of the work. Two candidates, not three: 19 generated tokens instead of 27 for the
# embedded model, and the control re-scored alike (92.8/93.0/93.0 against 93.1/92.3/93.0 on three
# sets of seeds). Reflected, not clipped: with the best at a bound (MountainCar's b = 7), 68 of
# the embedded model's 83 re-asked trials in 60-trial studies were steps clipped onto a tried
# point; the control scored alike either way.
# "advised" keeps Optuna's GPSampler in control and lets the LLM propose 30 % of the trials
# (CMA-ES with an LLM proposing 30 %, "Centaur", is the hybrid that beat CMA-ES in the 2026
# tuning study the README cites). It hands its trials over after 5 stalled trials, not 10: the
# LLM's steps about a plateau point fill the base's history with near-equal values there, which
# kept TPE on the plateau on 1 of 20 seeds with 10 and on none with 5 (random-changes control).
PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "tutorial": Preset(AbsolutePoints()),
        "guided": Preset(_GUIDED),
        "advised": Preset(
            dataclasses.replace(_GUIDED, stall_after=5), base_sampler="gp", llm_share=0.3
        ),
    }
)


def preset_proposal(preset: str, *, runs_locally: bool) -> Proposal:
    """The proposal a preset names: ``"auto"`` is ``"guided"`` for a model that runs in-process
    (``model="local"``, a GGUF file) and ``"tutorial"`` for the others.

    Example:
        >>> preset_proposal("auto", runs_locally=False)
        AbsolutePoints(n_candidates=1, min_distance=None, out_of_range='reject', hints=False)

    Raises:
        ValueError: Unknown preset; the message lists the known ones.
    """
    return PRESETS[resolve_preset(preset, runs_locally=runs_locally)].proposal


def resolve_preset(preset: str, *, runs_locally: bool) -> str:
    """``"tutorial"``, ``"guided"`` or ``"advised"``: the preset ``preset`` stands for.

    Example:
        >>> resolve_preset("auto", runs_locally=True)
        'guided'

    Raises:
        ValueError: Unknown preset; the message lists the known ones.
    """
    _one_of("preset", preset, PRESET_NAMES)
    if preset == "auto":
        return "guided" if runs_locally else "tutorial"
    return preset


def convert_proposal(proposal: Proposal, kind: type[Proposal]) -> Proposal:
    """``proposal`` as the other kind, keeping the settings both kinds share.

    Example:
        >>> convert_proposal(AbsolutePoints(n_candidates=3), StepsFromBest).n_candidates
        3
    """
    if type(proposal) is kind:
        return proposal
    shared = {name: getattr(proposal, name) for name in SHARED_PROPOSAL_FIELDS}
    return kind(**shared)


_ATTRIBUTE = re.compile(r"^ {4}(\w+): (.*)$")


def plain_markup(text: str, code: str = "") -> str:
    """Docstring markup (``x``, :class:`~a.X`) as text whose code spans are wrapped in ``code``.

    Example:
        >>> plain_markup("``None`` or :class:`~a.b.X`", code="`")
        '`None` or `X`'
    """
    text = re.sub(r":\w+:`~?(?:[\w.]+\.)?(\w+)`", code + r"\1" + code, text)
    return text.replace("``", code)


def option_docs(obj: Any, section: str = "Attributes") -> dict[str, str]:
    """Each option's description, from a section (``Attributes:``, ``Args:``) of a Google-style
    docstring: the one place an option is described.

    Example:
        >>> option_docs(HistoryOptions)["best_k"]
        'Best trials kept by ``"best_recent"``.'
    """
    docs: dict[str, str] = {}
    inside = False
    current: str | None = None
    for line in inspect.cleandoc(obj.__doc__ or "").splitlines():
        if line.strip() == f"{section}:":
            inside = True
            continue
        if not inside:
            continue
        match = _ATTRIBUTE.match(line)
        if match:
            current = match.group(1)
            docs[current] = match.group(2).strip()
        elif line.startswith(" " * 8) and current is not None:
            docs[current] += " " + line.strip()
        elif line.strip():
            break
    return docs
