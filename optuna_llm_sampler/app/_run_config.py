"""What ``optuna-llm-sampler run`` takes and what it reports."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
import math
import re
from typing import Any

from optuna.trial import FrozenTrial

from optuna_llm_sampler._records import FALLBACK
from optuna_llm_sampler._records import LLMUsage
from optuna_llm_sampler.app._compare_objectives import MAX_STUDY_SEED
from optuna_llm_sampler.app._named_samplers import default_model
from optuna_llm_sampler.app._named_samplers import SAMPLER_NAMES
from optuna_llm_sampler.providers import redact_url
from optuna_llm_sampler.rl import MOUNTAINCAR
from optuna_llm_sampler.rl import PAPER_TASKS


DEFAULT_STORAGE = "sqlite:///optuna_llm_sampler.db"


@dataclass(frozen=True)
class PolicyDefaults:
    """The policy's box and bias that ``run`` and ``compare`` use when the flags are not given.

    Attributes:
        low: Lower bound of every parameter.
        high: Upper bound of every parameter.
        bias: Whether the policy has a bias per action.
    """

    low: float = -7.0
    high: float = 7.0
    bias: bool = False


def policy_defaults(env: str) -> PolicyDefaults:
    """The tutorial's policy on MountainCarContinuous (2 weights in [-7, 7], no bias), the ProPS
    paper's on its other tasks (weights and a bias in [-6, 6]), the tutorial's box elsewhere.

    Example:
        >>> policy_defaults("Hopper-v5")
        PolicyDefaults(low=-6.0, high=6.0, bias=True)
    """
    task = PAPER_TASKS.get(env)
    if task is None or env == MOUNTAINCAR:
        return PolicyDefaults()
    return PolicyDefaults(low=task.low, high=task.high, bias=task.bias)


def add_policy_flags(parser: argparse.ArgumentParser) -> None:
    """``--low``, ``--high`` and ``--bias/--no-bias``, whose defaults depend on ``--env``
    (:func:`policy_defaults`; :func:`resolve_policy_flags` fills them in after parsing).

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_policy_flags(parser)
    """
    parser.add_argument(
        "--low", type=float, default=None, help="default: -6 on the ProPS paper's tasks, else -7"
    )
    parser.add_argument(
        "--high", type=float, default=None, help="default: 6 on the ProPS paper's tasks, else 7"
    )
    parser.add_argument(
        "--bias",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a bias per action (default: on the ProPS paper's tasks but MountainCarContinuous)",
    )


def resolve_policy_flags(args: argparse.Namespace) -> None:
    """Set the ``--low``, ``--high`` and ``--bias`` not given to :func:`policy_defaults` of
    ``args.env``.

    Example:
        >>> args = argparse.Namespace(env="CartPole-v1", low=None, high=None, bias=None)
        >>> resolve_policy_flags(args)
        >>> args.low, args.high, args.bias
        (-6.0, 6.0, True)
    """
    defaults = policy_defaults(args.env)
    for name in ("low", "high", "bias"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(defaults, name))


@dataclass
class RunConfig:
    """Everything ``optuna-llm-sampler run`` takes. Defaults follow the ProPS tutorial.

    The LLM sampler's own options are not repeated here: ``guidance`` names the library's preset
    and ``options`` holds the option fields set explicitly (see
    :func:`~optuna_llm_sampler.app._llm_options.sampler_options`).

    Attributes:
        env: A gymnasium id with a Box observation space and a Box or ``Discrete(n)`` action
            space.
        sampler: ``llm`` or one of Optuna's samplers (``tpe``, ``cmaes``, ``gp``, ``random``,
            ``qmc``).
        model: The LLM; ``None`` picks ``gpt-4o`` when ``OPENAI_API_KEY`` is set, else the
            embedded offline model.
        base_url: An OpenAI-compatible server for ``model``.
        n_trials: Trials the study should hold when done (a resumed study runs the rest).
        n_startup_trials: Random trials before the LLM is asked (the tutorial's warmup).
        n_eval_episodes: Episodes averaged per trial.
        max_steps: Step cap per episode.
        low: Lower bound of every weight (the command line's default depends on ``env``:
            :func:`policy_defaults`).
        high: Upper bound of every weight.
        bias: Add a bias per action to the policy.
        storage: Optuna storage URL, or ``journal:PATH``.
        study_name: ``None`` derives one from the env, sampler and seed.
        seed: Seeds the sampler and the evaluation episodes, in ``[0, 2147)``: the same startup
            points and episodes as ``compare``'s studies of the seed.
        artifacts: A folder for per-trial rollouts and policies (Optuna artifacts).
        warmup_dir: A folder of the tutorial's ``warmup_rollout_N.txt`` files to start from.
        max_total_tokens: Study-wide LLM token budget.
        heartbeat_interval: Seconds between heartbeats of running trials (RDB or journal
            storage); a trial of a killed worker is failed after twice that and retried once.
        progress: Show a progress bar.
        rescore_episodes: Fresh episodes used to re-score the best weights at the end.
        startup: ``"random"``: the startup trials are random over the whole box; ``"tutorial"``:
            the tutorial's warmup, weights uniform in [-3, 3] rounded to one decimal.
        guidance: ``"auto"``, ``"on"``, ``"off"`` or ``"advised"``: the presets ``"auto"``,
            ``"guided"``, ``"tutorial"`` and ``"advised"``.
        options: Option fields set explicitly, by group: ``{"prompt": {"precision": 4},
            "proposal": {"steps_from_best": True}}``; they win over the preset's.
        llm_options: Further keyword arguments of ``LLMSampler`` (``provider_options``, ...).
    """

    env: str = MOUNTAINCAR
    sampler: str = "llm"
    model: str | None = None
    base_url: str | None = None
    n_trials: int = 400
    n_startup_trials: int = 20
    n_eval_episodes: int = 20
    max_steps: int = 1000
    low: float = -7.0
    high: float = 7.0
    bias: bool = False
    storage: str = DEFAULT_STORAGE
    study_name: str | None = None
    seed: int = 0
    artifacts: str | None = None
    warmup_dir: str | None = None
    max_total_tokens: int | None = None
    heartbeat_interval: int | None = None
    progress: bool = True
    rescore_episodes: int = 100
    startup: str = "random"
    guidance: str = "auto"
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    llm_options: dict[str, Any] = field(default_factory=dict)

    def resolved_model(self) -> str:
        return self.model or default_model()

    def resolved_study_name(self) -> str:
        if self.study_name:
            return self.study_name
        who = self.sampler
        if self.sampler == "llm":
            who = "llm-" + self.resolved_model().replace("/", "_").replace(":", "_")
        return f"{self.env}-{who}-seed{self.seed}"

    def validate(self) -> None:
        if self.sampler not in SAMPLER_NAMES:
            raise ValueError(
                f"--sampler must be one of {', '.join(SAMPLER_NAMES)}, got {self.sampler!r}."
            )
        for name in ("n_trials", "n_eval_episodes", "max_steps", "rescore_episodes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive.")
        if self.n_startup_trials < 0:
            raise ValueError("--n-startup-trials must be non-negative.")
        if not 0 <= self.seed < MAX_STUDY_SEED:  # compare's episodes of the seed exist
            raise ValueError(f"--seed must be in [0, {MAX_STUDY_SEED}), got {self.seed}.")
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
            raise ValueError(f"--low must be below --high, got {self.low} and {self.high}.")
        if self.sampler != "llm" and (self.model or self.base_url):
            raise ValueError("--model and --base-url apply to --sampler llm only.")
        if self.guidance not in ("auto", "on", "off", "advised"):
            raise ValueError(
                f"--guidance must be auto, on, off or advised, got {self.guidance!r}."
            )
        if self.startup not in ("random", "tutorial"):
            raise ValueError(f"--startup must be 'random' or 'tutorial', got {self.startup!r}.")
        if self.startup == "tutorial" and not (self.low <= -3 and self.high >= 3):
            raise ValueError(
                "--startup tutorial draws weights in [-3, 3], which must lie within "
                f"[--low, --high] = [{self.low}, {self.high}]."
            )


#: Characters of a fallback reason's detail shown in the summary (the trial's note has it all).
FALLBACK_DETAIL_CHARS = 120
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def shown_text(text: str, limit: int = FALLBACK_DETAIL_CHARS) -> str:
    """Text from a provider or a model as one terminal line: control characters (escape
    sequences included) and line breaks become spaces, URLs lose their credentials, long text
    is cut.

    Example:
        >>> shown_text("refused by http://me:pw@host/v1\\n\\x1b[31mred")
        'refused by http://me:***@host/v1 [31mred'
    """
    text = " ".join(_UNPRINTABLE.sub(" ", str(text)).split())
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class FallbackGroup:
    """Trials that fell back for one kind of reason.

    Attributes:
        reason: The kind, as the sampler words it: ``"provider error"``, ``"no usable answer
            after 4 attempts"``, ``"token budget spent"``.
        count: Trials that fell back for it.
        last: The detail of the latest such trial (one line, cut), or ``""``.
    """

    reason: str
    count: int
    last: str


def group_fallbacks(trials: Iterable[FrozenTrial]) -> tuple[FallbackGroup, ...]:
    """Group the trials' ``llm_fallback`` reasons by kind, the most frequent first.

    The kind is the reason up to its first ``:`` or `` (``; what follows (the provider's
    message, the answer's problem) differs from trial to trial, and the latest one is kept.

    Example:
        >>> [g.reason for g in group_fallbacks(study.trials)]  # doctest: +SKIP
        ['provider error', 'no usable answer after 4 attempts']
    """
    counts: Counter[str] = Counter()
    last: dict[str, str] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        reason = trial.user_attrs.get(FALLBACK)
        if not isinstance(reason, str) or not reason.strip():
            continue
        kind = re.split(r":| \(", reason, maxsplit=1)[0].strip() or "unknown"
        kind = shown_text(kind, 60)
        counts[kind] += 1
        last[kind] = shown_text(reason[len(kind) :].lstrip(" :"))
    return tuple(FallbackGroup(kind, n, last[kind]) for kind, n in counts.most_common())


@dataclass
class RunSummary:
    """What a run found and what it cost."""

    study_name: str
    storage: str
    n_trials: int
    best_value: float | None
    best_params: dict[str, Any]
    rescored_mean: float | None
    rescored_std: float | None
    usage: LLMUsage
    model: str | None
    artifacts: str | None
    fallback_groups: tuple[FallbackGroup, ...] = ()
    # Set when the first LLM trials all fell back for the same provider reason
    # (ProviderOutage.message()): `run` then exits non-zero.
    outage: str | None = None

    def fallbacks_text(self) -> str:
        """The fallbacks by reason, one line: ``5 provider error: ...; 2 no usable answer ...``.

        Example:
            >>> summary.fallbacks_text()  # doctest: +SKIP
            '5 provider error: ProviderUnavailableError: ...; 2 no usable answer after 4 ...'
        """
        return "; ".join(
            f"{g.count} {g.reason}" + (f": {g.last}" if g.last else "")
            for g in self.fallback_groups
        )

    def lines(self) -> list[str]:
        storage = redact_url(self.storage)
        out = [f"study {self.study_name!r} in {storage}: {self.n_trials} complete trials"]
        if self.best_value is not None:
            weights = ", ".join(f"{k}={v:.4g}" for k, v in self.best_params.items())
            out.append(f"best weights: {weights}")
            out.append(f"best value seen: {self.best_value:.2f}")
        if self.rescored_mean is not None:
            out.append(
                f"best re-scored on fresh episodes: {self.rescored_mean:.2f} "
                f"± {self.rescored_std:.2f} (the value seen overstates it)"
            )
        u = self.usage
        if u.llm_trials:
            out.append(
                f"LLM ({self.model}): {u.proposals} proposals, {u.fallbacks} fallbacks "
                f"({u.proposal_share:.0%} of {u.llm_trials} LLM trials were the LLM's own), "
                f"{u.calls} calls, {u.prompt_tokens} prompt + {u.completion_tokens} "
                f"completion tokens, {u.latency_s:.1f} s waiting"
            )
        if self.fallback_groups:
            out.append(f"fallbacks: {self.fallbacks_text()}")
        if self.outage:
            out.append(f"error: {self.outage}")
        out.append(f"watch it: {dashboard_command(self.storage, self.artifacts)}")
        return out


def dashboard_command(storage: str, artifacts: str | None = None) -> str:
    """The command that opens a study's storage (and artifacts) in optuna-dashboard; a password
    in the storage URL is shown as ``***`` (type it in).

    Example:
        >>> dashboard_command("sqlite:///study.db", "art")
        'optuna-llm-sampler dashboard --storage sqlite:///study.db --artifacts art'
    """
    command = f"optuna-llm-sampler dashboard --storage {redact_url(storage)}"
    return command + (f" --artifacts {artifacts}" if artifacts else "")
