"""The LLM sampler's options on the command line, and the ``LLMSampler(...)`` call they make.

One flag per option, its help read from the option's own docstring (the one place each option is
described), so ``run --help``, ``compare --help`` and docs/options.md cannot drift from the
library. ``--guidance`` maps onto the library's presets; flags given explicitly change the
preset's proposal field by field.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
import dataclasses
from dataclasses import dataclass
from typing import Any

from optuna_llm_sampler._advice import BASE_SAMPLER_NAMES
from optuna_llm_sampler._options import AbsolutePoints
from optuna_llm_sampler._options import convert_proposal
from optuna_llm_sampler._options import HistoryOptions
from optuna_llm_sampler._options import option_docs
from optuna_llm_sampler._options import OUT_OF_RANGE
from optuna_llm_sampler._options import plain_markup
from optuna_llm_sampler._options import preset_proposal
from optuna_llm_sampler._options import PromptOptions
from optuna_llm_sampler._options import Proposal
from optuna_llm_sampler._options import resolve_preset
from optuna_llm_sampler._options import StepsFromBest
from optuna_llm_sampler._sampler import LLMSampler
from optuna_llm_sampler.providers import redact_url
from optuna_llm_sampler.rl import MOUNTAINCAR
from optuna_llm_sampler.rl import TASK_DESCRIPTIONS


#: ``--guidance`` values and the presets they name.
GUIDANCE_PRESETS = {"auto": "auto", "on": "guided", "off": "tutorial", "advised": "advised"}
#: The option groups flags set; ``"sampler"`` is ``LLMSampler``'s own keyword arguments.
GROUPS = ("prompt", "history", "proposal", "sampler")
_STEPS = "steps_from_best"


@dataclass(frozen=True)
class Flag:
    """A command-line flag for one option field.

    Attributes:
        name: The flag, such as ``--min-distance``.
        group: ``"prompt"``, ``"history"``, ``"proposal"`` or ``"sampler"``: the option group
            it sets (``"sampler"``: a keyword argument of ``LLMSampler`` itself).
        field: The field of the group's option object.
        owner: The option class whose docstring describes the field (its ``Attributes:``, or
            ``LLMSampler``'s ``Args:``).
        type: The value's type; ``None`` for an on/off flag.
        choices: The values allowed, if a fixed set.
        note: What the command adds to the option's description.
    """

    name: str
    group: str
    field: str
    owner: type
    type: Any = None
    choices: tuple[str, ...] | None = None
    note: str = ""

    def doc(self) -> str:
        """The field's description in its owner's docstring (``LLMSampler``'s ``Args:`` for the
        ``"sampler"`` group, an option group's ``Attributes:`` otherwise)."""
        section = "Args" if self.group == "sampler" else "Attributes"
        return option_docs(self.owner, section)[self.field]


def history_tokens(text: str) -> int | str | None:
    """``--max-history-tokens`` as ``HistoryOptions(max_tokens=...)``: ``auto``, ``none`` or an
    integer (checked by the option).

    Example:
        >>> history_tokens("auto"), history_tokens("none"), history_tokens("1500")
        ('auto', None, 1500)
    """
    word = text.strip().lower()
    if word in ("auto", "none"):
        return None if word == "none" else "auto"
    try:
        return int(word)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected auto, none or a number of tokens, got {text!r}"
        ) from None


FLAGS = (
    Flag("--search-std", "prompt", "search_std", PromptOptions, float),
    Flag(
        "--expected-optimum",
        "prompt",
        "expected_optimum",
        PromptOptions,
        float,
        note=f"Default: 50 on {MOUNTAINCAR} (the tutorial's), none elsewhere.",
    ),
    Flag(
        "--task-description",
        "prompt",
        "task_description",
        PromptOptions,
        str,
        note="'auto' describes the environment (the default with --guidance on), 'none' "
        "does not, or give your own text.",
    ),
    Flag("--precision", "prompt", "precision", PromptOptions, int),
    Flag(
        "--answer-format",
        "prompt",
        "answer_format",
        PromptOptions,
        str,
        ("auto", "json", "text", "compact"),
    ),
    Flag("--reasoning", "prompt", "reasoning", PromptOptions),
    Flag(
        "--max-history-tokens",
        "history",
        "max_tokens",
        HistoryOptions,
        history_tokens,
        note="'auto', 'none' or a number of tokens.",
    ),
    Flag("--history-style", "history", "style", HistoryOptions, str, ("csv", "tutorial")),
    Flag("--steps-from-best", "proposal", _STEPS, StepsFromBest),
    Flag("--n-candidates", "proposal", "n_candidates", AbsolutePoints, int),
    Flag("--min-distance", "proposal", "min_distance", AbsolutePoints, float),
    Flag("--out-of-range", "proposal", "out_of_range", AbsolutePoints, str, OUT_OF_RANGE),
    Flag("--hints", "proposal", "hints", AbsolutePoints),
    Flag("--n-tried-changes", "proposal", "n_tried_changes", StepsFromBest, int),
    Flag("--widen-steps-after", "proposal", "widen_after", StepsFromBest, int),
    Flag("--stall-after", "proposal", "stall_after", StepsFromBest, int),
    Flag("--base-sampler", "sampler", "base_sampler", LLMSampler, str, BASE_SAMPLER_NAMES),
    Flag("--llm-share", "sampler", "llm_share", LLMSampler, float),
    Flag("--llm-startup-trials", "sampler", "llm_startup_trials", LLMSampler, int),
)


def _plain(text: str) -> str:
    """Docstring markup as terminal text: ``x`` and :class:`X` become x and X."""
    return plain_markup(text).replace("%", "%%")


def flag_help(flag: Flag) -> str:
    """The help of ``flag``: its option's description, the command's note, the default.

    Example:
        >>> flag_help(FLAGS[0])
        'The exploration step the prompt suggests, or None to omit it. (default: 1.0)'
    """
    if flag.field == _STEPS:
        text = (
            "The LLM answers with changes to the best point so far (StepsFromBest) instead of "
            "absolute values (AbsolutePoints)."
        )
    else:
        text = _plain(flag.doc())
    if flag.note:
        text += " " + flag.note
    return f"{text} (default: {_default(flag)})"


def _default(flag: Flag) -> str:
    if flag.group == "proposal" or flag.field in ("base_sampler", "llm_share"):
        return "as --guidance says"
    if flag.group == "sampler":
        return "0"
    if flag.field == "expected_optimum":
        return "see above"
    for f in dataclasses.fields(flag.owner):
        if f.name == flag.field:
            return "none" if f.default is None else str(f.default)
    raise AssertionError(flag.field)


def add_llm_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--guidance`` and a flag per LLM sampler option to ``parser``.

    A flag not given is absent from the parsed namespace (``argparse.SUPPRESS``), so
    :func:`given_options` tells an explicit value from a default.
    """
    group = parser.add_argument_group(
        "LLM sampler options (LLMSampler's prompt, history and proposal; docs/options.md)"
    )
    group.add_argument(
        "--guidance",
        default="auto",
        choices=tuple(GUIDANCE_PRESETS),
        help="the preset: on is 'guided' (steps from the best point, two candidates ranked by "
        "a small GP, changes reflected at the box, repeats within 0.1 re-asked, hints, the "
        "environment described, a third of the trials to far random points while the best "
        "stalls), off is 'tutorial' (the tutorial's loop), advised is 'guided' for 30%% of the "
        "trials with Optuna's GPSampler in control of the others, auto is on for local models "
        "and off for the others (default: auto)",
    )
    for flag in FLAGS:
        kwargs: dict[str, Any] = {
            "dest": f"{flag.group}.{flag.field}",
            "default": argparse.SUPPRESS,
            "help": flag_help(flag),
        }
        if flag.type is not None and not flag.choices:
            kwargs["metavar"] = flag.name[2:].upper().replace("-", "_")
        if flag.type is None:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _none_or(flag.type) if flag.field == "precision" else flag.type
            if flag.choices:
                kwargs["choices"] = flag.choices
        group.add_argument(flag.name, **kwargs)


def _none_or(kind: Any) -> Any:
    def parse(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__
    return parse


def given_options(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The option fields set on the command line, by group.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_llm_flags(parser)
        >>> given_options(parser.parse_args(["--hints", "--llm-share", "0.5"]))
        {'prompt': {}, 'history': {}, 'proposal': {'hints': True}, 'sampler': {'llm_share': 0.5}}
    """
    given: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}
    for flag in FLAGS:
        dest = f"{flag.group}.{flag.field}"
        if hasattr(args, dest):
            given[flag.group][flag.field] = getattr(args, dest)
    return given


def resolve_proposal(
    guidance: str, model: str, given: Mapping[str, Any] | None = None
) -> Proposal:
    """The preset's proposal for ``model``, changed by the fields given explicitly.

    Example:
        >>> resolve_proposal("auto", "local", {"n_candidates": 1}).n_candidates
        1

    Raises:
        ValueError: An unknown ``guidance``, a bad value, or a field of steps from the best
            point asked for absolute points.
    """
    if guidance not in GUIDANCE_PRESETS:
        raise ValueError(f"--guidance must be auto, on, off or advised, got {guidance!r}.")
    proposal = preset_proposal(GUIDANCE_PRESETS[guidance], runs_locally=_is_local(model))
    fields = dict(given or {})
    steps = fields.pop(_STEPS, None)
    if steps is not None:
        proposal = convert_proposal(proposal, StepsFromBest if steps else AbsolutePoints)
    if not isinstance(proposal, StepsFromBest):
        for name in ("widen_after", "n_tried_changes", "stall_after"):
            if name in fields:
                flag = next(f.name for f in FLAGS if f.field == name)
                raise ValueError(
                    f"{flag} applies to steps from the best point; add --steps-from-best "
                    "(or --guidance on)."
                )
    return dataclasses.replace(proposal, **fields)


def sampler_options(
    *,
    env: str,
    model: str,
    guidance: str = "auto",
    given: Mapping[str, Mapping[str, Any]] | None = None,
    budget: int | None = None,
) -> dict[str, Any]:
    """The keyword arguments of the ``LLMSampler`` that ``run`` and ``compare`` build.

    The prompt tells the LLM the study's ``budget`` and, on MountainCar, the tutorial's expected
    optimum; with the ``guided`` preset it describes the environment (ProPS+), which only the
    command knows. ``proposal`` is passed only when a flag changed the preset's.

    Example:
        >>> options = sampler_options(env="MountainCarContinuous-v0", model="local")
        >>> options["preset"], options["prompt"].expected_optimum, "proposal" in options
        ('auto', 50.0, False)
    """
    given = {group: dict((given or {}).get(group, {})) for group in GROUPS}
    preset = GUIDANCE_PRESETS.get(guidance, guidance)
    guided = resolve_preset(preset, runs_locally=_is_local(model)) in ("guided", "advised")
    prompt = dict(given["prompt"])
    description = prompt.pop("task_description", "auto" if guided else None)
    if description == "auto":
        description = TASK_DESCRIPTIONS.get(env)
    elif description == "none":
        description = None
    expected = prompt.pop("expected_optimum", None)
    options: dict[str, Any] = {
        "model": model,
        "preset": preset,
        "prompt": PromptOptions(
            task_description=description,
            expected_optimum=expected_optimum_hint(env, expected),
            budget=budget,
            **prompt,
        ),
    }
    if given["history"]:
        options["history"] = HistoryOptions(**given["history"])
    if given["proposal"]:
        options["proposal"] = resolve_proposal(guidance, model, given["proposal"])
    options.update(given["sampler"])
    return options


def expected_optimum_hint(env: str, expected_optimum: float | None) -> float | None:
    """The prompt's "expected optimum" hint: the one given, else the tutorial's 50 on
    MountainCarContinuous and none elsewhere.

    Example:
        >>> expected_optimum_hint("MountainCarContinuous-v0", None)
        50.0
    """
    if expected_optimum is None and env == MOUNTAINCAR:
        return 50.0
    return expected_optimum


def python_call(options: Mapping[str, Any], *, env: str) -> str:
    """``LLMSampler(...)`` as Python: the call that builds the sampler ``options`` describe.

    Fields left at their defaults are left out; the environment's description is named by its
    constant rather than written out. It is printed and stored, so a ``base_url`` shows no
    credentials (:func:`~optuna_llm_sampler.providers.redact_url`) and an ``api_key`` is named by
    where it comes from, never written out.

    Example:
        >>> python_call({"model": "gpt-4o", "prompt": PromptOptions(budget=60)}, env="X")
        "LLMSampler(model='gpt-4o', prompt=PromptOptions(budget=60))"
    """
    parts = []
    for key, value in options.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            parts.append(f"{key}={dataclass_call(value, env)}")
        elif key == "provider_options" and not value:
            continue
        elif key == "base_url" and isinstance(value, str):
            parts.append(f"{key}={redact_url(value)!r}")
        elif key == "api_key" and value is not None:
            parts.append(f"{key}=os.environ[...]")
        else:
            parts.append(f"{key}={value!r}")
    return f"LLMSampler({', '.join(parts)})"


def dataclass_call(value: Any, env: str) -> str:
    fields = []
    for f in dataclasses.fields(value):
        current = getattr(value, f.name)
        default = (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        )
        if current == default:
            continue
        if isinstance(current, Mapping):
            fields.append(f"{f.name}={dict(current)!r}")
        elif f.name == "task_description" and current == TASK_DESCRIPTIONS.get(env):
            fields.append(f"task_description=TASK_DESCRIPTIONS[{env!r}]")
        else:
            fields.append(f"{f.name}={current!r}")
    return f"{type(value).__name__}({', '.join(fields)})"


def _is_local(model: str) -> bool:
    return model == "local" or model.startswith("local:")
