"""LLMSampler: an Optuna sampler that asks a large language model for the next trial."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import math
import threading
import time
from typing import Any
from typing import Literal
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import FloatDistribution
from optuna.samplers import BaseSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_llm_sampler._advice import base_startup
from optuna_llm_sampler._advice import HANDOFF_SHARE
from optuna_llm_sampler._advice import llm_owns
from optuna_llm_sampler._advice import make_base_sampler
from optuna_llm_sampler._advice import share_picks
from optuna_llm_sampler._advice import since_moved
from optuna_llm_sampler._answer import answer_excerpt
from optuna_llm_sampler._answer import AnswerError
from optuna_llm_sampler._answer import build_candidates_schema
from optuna_llm_sampler._answer import build_compact_schema
from optuna_llm_sampler._answer import build_json_schema
from optuna_llm_sampler._answer import cut_answer
from optuna_llm_sampler._answer import text_safe_name
from optuna_llm_sampler._claims import claim_proposal
from optuna_llm_sampler._claims import fresh_seed
from optuna_llm_sampler._claims import PerTrialRandomSampler
from optuna_llm_sampler._history import best_row
from optuna_llm_sampler._history import collect_history
from optuna_llm_sampler._history import estimate_tokens
from optuna_llm_sampler._history import fixed_params
from optuna_llm_sampler._history import history_budget
from optuna_llm_sampler._history import HistoryEntry
from optuna_llm_sampler._history import select_history
from optuna_llm_sampler._options import AbsolutePoints
from optuna_llm_sampler._options import AnswerFormat
from optuna_llm_sampler._options import check_share
from optuna_llm_sampler._options import convert_proposal
from optuna_llm_sampler._options import HistoryOptions
from optuna_llm_sampler._options import PresetName
from optuna_llm_sampler._options import PRESETS
from optuna_llm_sampler._options import PromptOptions
from optuna_llm_sampler._options import Proposal
from optuna_llm_sampler._options import resolve_preset
from optuna_llm_sampler._options import StepsFromBest
from optuna_llm_sampler._prompt import build_context
from optuna_llm_sampler._prompt import CONTEXT_VARIABLES
from optuna_llm_sampler._prompt import feedback_message
from optuna_llm_sampler._prompt import function_label
from optuna_llm_sampler._prompt import history_line
from optuna_llm_sampler._prompt import load_template
from optuna_llm_sampler._prompt import render_prompt
from optuna_llm_sampler._prompt import shown_decimals
from optuna_llm_sampler._prompt import shown_key
from optuna_llm_sampler._prompt import suggested_step
from optuna_llm_sampler._prompt import tried_changes
from optuna_llm_sampler._proposals import Candidate
from optuna_llm_sampler._proposals import choose
from optuna_llm_sampler._proposals import read_candidates
from optuna_llm_sampler._proposals import repeat_problem
from optuna_llm_sampler._proposals import rows_by_shown_key
from optuna_llm_sampler._proposals import show_point
from optuna_llm_sampler._records import LLMRecord
from optuna_llm_sampler._records import provider_outage
from optuna_llm_sampler._records import token_count
from optuna_llm_sampler._records import usage_of_trials
from optuna_llm_sampler._records import write_record
from optuna_llm_sampler._space import step_space
from optuna_llm_sampler._spread import farthest_draw
from optuna_llm_sampler.providers import create_client
from optuna_llm_sampler.providers import LLMClient
from optuna_llm_sampler.providers import Message
from optuna_llm_sampler.providers import ProviderConfigError


if TYPE_CHECKING:
    from optuna.study import Study


_logger = optuna.logging.get_logger(f"optuna.{__name__}")

OnError = Literal["fallback", "raise"]
#: Trials whose owner (the LLM or the base sampler) a process keeps in memory at once.
_MAX_OWNERS = 1024

#: Who samples a trial: the LLM, the base sampler, or (a stalled trial without a base sampler in
#: control) a random point far from every tried one (:func:`farthest_draw`).
_Turn = Literal["llm", "base", "spread"]
# Tags the spread points' random stream, apart from PerTrialRandomSampler's (seed, trial, name).
_SPREAD_STREAM = 0x5B12EAD


@dataclass
class _HistoryCache:
    rows: dict[int, HistoryEntry | None] = field(default_factory=dict)
    lines: dict[int, tuple[str, int]] = field(default_factory=dict)
    keys: dict[int, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class _ClientSpec:
    """How a client was built from a model string, to build it again after unpickling."""

    model: str
    base_url: str | None
    options: Mapping[str, Any]


class LLMSampler(BaseSampler):
    """Sampler that asks a large language model for the next parameters (prompted policy search).

    On each of its trials, the sampler renders the study's history into a Jinja prompt (by
    default the ProPS tutorial's), asks the LLM for one point of the relative search space,
    validates and snaps the answer into Optuna's distributions, and re-asks with the problem fed
    back when the answer is unusable or repeats a completed or pending trial. If no usable answer
    comes within ``max_retries`` re-asks, the provider fails or the token budget is spent, the
    base sampler samples the trial and the reason is recorded. No answer of the LLM can crash a
    study.

    Which trials are the LLM's: the first ``llm_startup_trials`` (by trial number), then, once
    ``n_startup_trials`` trials are complete, the ``llm_share`` of trial numbers spread evenly
    (0.3: trials 3, 6, 9, 13, ...). The rule reads only the trial's number and the count of
    completed trials, so workers in other threads or processes agree on it without talking. A
    :class:`StepsFromBest` with ``stall_after`` hands the LLM's trials over while the best value
    has not moved beyond the noise for that many trials: a third of them to random points far
    from every tried one, or all of them to a base sampler in control.

    The base sampler samples every other trial. By default it is random search that samples the
    startup trials and the fallbacks (``independent_sampler``). With ``base_sampler`` (such as
    ``optuna.samplers.GPSampler(seed=0)``, or ``preset="advised"``) it is any Optuna sampler in
    control of the study: its own relative and independent sampling on its trials and on every
    fallback (never random search in its place), and its ``before_trial``, ``after_trial`` and
    ``reseed_rng`` are called. Both see one history, the study's, so GPSampler and TPESampler
    model the LLM's trials as their own. CmaEsSampler (Optuna 5.0) does not: it tells its
    optimizer only the completed trials whose ``cma:generation`` system attribute (written by its
    own ``sample_relative``) equals the current generation, so the LLM's trials, which carry
    none, are left out of its updates, and a generation completes after ``popsize`` trials of its
    own. CMA-ES stays correct beside the LLM (it is neither confused nor stalled); it just does not
    learn from the LLM's points, and the study keeps the best of both.

    What the LLM answers with is a proposal kind: :class:`AbsolutePoints` (the next point's
    values) or :class:`StepsFromBest` (changes to the best point). ``preset`` chooses one with
    its settings and base sampler: ``"tutorial"`` is the ProPS tutorial's loop, ``"guided"``
    answers with two candidate steps from the best point reflected at the box, repeats within 0.1
    re-asked, the hints at the prompt's end, and hands trials to far random points when the best
    stalls; ``"advised"`` is ``"guided"``'s proposal (handing over after 5 stalled trials) for
    30 % of the trials with GPSampler in control; ``"auto"`` is ``"guided"`` for a model that
    runs in-process (``"local"``, a GGUF file) and ``"tutorial"`` for the others. A
    ``proposal``, ``base_sampler`` or ``llm_share`` given explicitly wins over the preset's.
    Where a parameter has no plain step (categorical, log scale), a preset's steps from the best
    point become absolute points with the same settings; an explicit :class:`StepsFromBest`
    raises a ``ValueError`` there.

    Every LLM-sampled trial carries short user attributes (``llm_model``, ``llm_prompt_tokens``,
    ``llm_completion_tokens``, ``llm_latency_s``, ``llm_attempts``, ``llm_reasoning`` and, when
    it fell back, ``llm_fallback``); the whole conversation is kept in system attributes and read
    back with :func:`~optuna_llm_sampler.get_llm_record`.

    Example:
        .. code-block:: python

            import optuna
            from optuna_llm_sampler import LLMSampler
            from optuna_llm_sampler import PromptOptions


            def objective(trial):
                a = trial.suggest_float("a", -7, 7)
                b = trial.suggest_float("b", -7, 7)
                return -((a - 1) ** 2) - (b - 5) ** 2


            sampler = LLMSampler(
                model="gpt-4o", prompt=PromptOptions(search_std=1.0, budget=100), seed=0
            )
            study = optuna.create_study(direction="maximize", sampler=sampler)
            study.optimize(objective, n_trials=100)

            # Optuna's GPSampler in control, the LLM proposing 30 % of the trials:
            advised = LLMSampler(
                model="gpt-4o", base_sampler=optuna.samplers.GPSampler(seed=0), llm_share=0.3
            )

    Args:
        model: A model string (``"gpt-4o"``, ``"openai:gpt-4o-mini"``,
            ``"gemini:gemini-2.0-flash"``, ``"local"`` for the embedded offline model,
            ``"local:/path/model.gguf"``) or any object implementing
            :class:`~optuna_llm_sampler.LLMClient`.
        preset: ``"auto"``, ``"tutorial"``, ``"guided"`` or ``"advised"``: the proposal, base
            sampler and share used where ``proposal``, ``base_sampler`` or ``llm_share`` is not
            given (see above).
        prompt: What the prompt says besides the history (:class:`PromptOptions`).
        history: Which trials the prompt shows, and how (:class:`HistoryOptions`).
        proposal: What the LLM answers with (:class:`AbsolutePoints` or
            :class:`StepsFromBest`); ``None`` takes the preset's.
        base_url: The provider's endpoint, e.g. an OpenAI-compatible server
            (``"http://127.0.0.1:8080/v1"``). Only with a model string.
        api_key: The provider's API key; by default read from the environment
            (``OPENAI_API_KEY``, ``GEMINI_API_KEY``). Never written to storage, logs or pickles.
        provider_options: Further keyword arguments for the provider's client (timeouts,
            temperature, ``cache=``...). Only with a model string.
        base_sampler: An Optuna sampler in control of every trial the LLM does not propose, and
            of every fallback; or one by name (``"gp"``, ``"tpe"``, ``"cmaes"``, ``"random"``,
            seeded by ``seed``); ``None`` takes the preset's (random search for the startup and
            the fallbacks, except with ``"advised"``).
        llm_share: The share of trials after the startup that the LLM proposes, in (0, 1];
            ``None`` takes the preset's (1.0, or 0.3 with ``"advised"``).
        llm_startup_trials: The first trials the LLM proposes before any startup of the base
            sampler, zero-shot from the task description (``PromptOptions(task_description=
            ...)``). Optuna learns the parameters from a study's first trial, so a study with no
            completed trial gives its first one to the base sampler.
        n_startup_trials: Completed trials before the LLM's share begins, sampled by the base
            sampler; ``None`` is 20 (the tutorial's warmup episodes), or the base sampler's own
            startup (``n_startup_trials`` of GP and TPE: 10, CMA-ES: 1) with ``base_sampler``.
        max_retries: Re-asks per trial after an unusable or repeated answer. An answer that
            repeats an earlier one of the same trial word for word ends the re-asks (it would
            fail again for the same reason): the trial falls back at once.
        max_total_tokens: A study-wide budget of prompt + completion tokens (summed from storage,
            so shared by all workers). Once spent, trials fall back with one logged warning.
        on_error: ``"fallback"`` samples a trial with ``independent_sampler`` when the provider
            fails; ``"raise"`` stops the study. Configuration errors (missing or rejected key,
            unknown model) always raise.
        independent_sampler: Without ``base_sampler``: samples the startup trials, parameters
            outside the relative search space, and every fallback, one parameter at a time.
            Defaults to random search with a stream of its own for every trial (seeded by
            ``seed`` and the trial number), so workers that share a seed never draw each
            other's points.
        seed: Seed of the default independent sampler, and of a base sampler given by name.

    Raises:
        ValueError: An argument is invalid (the message names it).
        ProviderConfigError: The provider cannot be used (missing extra or API key), raised here,
            before the first trial.
    """

    def __init__(
        self,
        *,
        model: str | LLMClient,
        preset: PresetName = "auto",
        prompt: PromptOptions | None = None,
        history: HistoryOptions | None = None,
        proposal: Proposal | None = None,
        base_sampler: BaseSampler | str | None = None,
        llm_share: float | None = None,
        llm_startup_trials: int = 0,
        base_url: str | None = None,
        api_key: str | None = None,
        provider_options: Mapping[str, Any] | None = None,
        n_startup_trials: int | None = None,
        max_retries: int = 3,
        max_total_tokens: int | None = None,
        on_error: OnError = "fallback",
        independent_sampler: BaseSampler | None = None,
        seed: int | None = None,
    ) -> None:
        _check_group("prompt", prompt, PromptOptions)
        _check_group("history", history, HistoryOptions)
        _check_group("proposal", proposal, (AbsolutePoints, StepsFromBest))
        if n_startup_trials is not None and (
            isinstance(n_startup_trials, bool) or n_startup_trials < 0
        ):
            raise ValueError(f"n_startup_trials must be non-negative, got {n_startup_trials}.")
        if isinstance(llm_startup_trials, bool) or not (
            isinstance(llm_startup_trials, int) and llm_startup_trials >= 0
        ):
            raise ValueError(
                f"llm_startup_trials must be a non-negative integer, got {llm_startup_trials!r}."
            )
        if llm_share is not None:
            check_share("llm_share", llm_share)
        if base_sampler is not None and not isinstance(base_sampler, (str, BaseSampler)):
            raise ValueError(
                "base_sampler must be an Optuna sampler such as optuna.samplers.GPSampler(seed=0) "
                f"or a name ('gp', 'tpe', 'cmaes', 'random'), got {type(base_sampler).__name__}."
            )
        if isinstance(base_sampler, LLMSampler):
            raise ValueError("base_sampler must be one of Optuna's samplers, not an LLMSampler.")
        if max_retries < 0:
            raise ValueError(f"max_retries must be non-negative, got {max_retries}.")
        if max_total_tokens is not None and max_total_tokens <= 0:
            raise ValueError(f"max_total_tokens must be positive, got {max_total_tokens}.")
        if on_error not in ("fallback", "raise"):
            raise ValueError(f"on_error must be 'fallback' or 'raise', got {on_error!r}.")

        self._client_spec: _ClientSpec | None = None
        if isinstance(model, str):
            options = dict(provider_options or {})
            self._client: LLMClient = create_client(
                model, base_url=base_url, api_key=api_key, **options
            )
            # The key stays out of the spec: a pickled sampler reads it from the environment.
            self._client_spec = _ClientSpec(model, base_url, options)
        elif isinstance(model, LLMClient):
            if base_url is not None or api_key is not None or provider_options:
                raise ValueError(
                    "base_url, api_key and provider_options apply to model strings only; "
                    "configure the client object instead."
                )
            self._client = model
        else:
            raise ValueError(
                "model must be a model string such as 'gpt-4o' or an object with "
                f"complete(messages, *, schema=None), got {type(model).__name__}."
            )

        self._prompt = prompt or PromptOptions()
        self._history = history or HistoryOptions()
        runs_locally = bool(getattr(self._client, "runs_locally", False))
        chosen = PRESETS[resolve_preset(preset, runs_locally=runs_locally)]
        self._proposal = proposal or chosen.proposal
        self._proposal_given = proposal is not None
        base = chosen.base_sampler if base_sampler is None else base_sampler
        if base is not None and independent_sampler is not None:
            raise ValueError(
                "base_sampler (or preset='advised') and independent_sampler both sample the "
                "trials the LLM does not; pass only one."
            )
        if isinstance(base, str):
            base = make_base_sampler(base, seed=seed)
        # With a base sampler in control it samples its trials as a whole (relative sampling);
        # the independent sampler only ever fills in one parameter at a time.
        self._base: BaseSampler = base or independent_sampler or PerTrialRandomSampler(seed=seed)
        self._base_in_control = base is not None
        self._spread_seed = fresh_seed() if seed is None else seed
        self._llm_share = chosen.llm_share if llm_share is None else float(llm_share)
        self._llm_startup_trials = llm_startup_trials
        if n_startup_trials is None:
            n_startup_trials = base_startup(self._base) if self._base_in_control else 20
        steps = self._proposal
        widens = isinstance(steps, StepsFromBest) and steps.widen_after is not None
        if widens and self._prompt.search_std is None:
            raise ValueError(
                "StepsFromBest(widen_after=...) needs a step to widen; set "
                "PromptOptions(search_std=...)."
            )
        clash = set(self._prompt.template_vars) & CONTEXT_VARIABLES
        if clash:
            raise ValueError(f"template_vars may not redefine {sorted(clash)}.")
        self._template = load_template(self._prompt.template)
        self._answer_format: AnswerFormat = (
            _auto_format(self._client, runs_locally)
            if self._prompt.answer_format == "auto"
            else self._prompt.answer_format
        )
        # A local model's reason costs seconds of generation and mostly restates numbers.
        self._reasoning = (
            not runs_locally if self._prompt.reasoning is None else self._prompt.reasoning
        )
        self._history_tokens = history_budget(self._history.max_tokens, self._client)
        self._check_template(0 if llm_startup_trials else n_startup_trials)
        self._n_startup_trials = n_startup_trials
        self._max_retries = max_retries
        self._max_total_tokens = max_total_tokens
        self._on_error: OnError = on_error
        self._search_space = IntersectionSearchSpace(include_pruned=True)
        self._init_process_state()

    def _check_template(self, n_startup_trials: int) -> None:
        """Render the template once on a representative prompt (two parameters, two completed
        trials and a running one; no history too when the LLM answers from the first trial), so
        an undefined variable or a failing expression is an error here, not at the first LLM
        trial after the startup trials ran."""
        space: dict[str, BaseDistribution] = {
            "x": FloatDistribution(-1.0, 1.0),
            "y": FloatDistribution(-1.0, 1.0),
        }
        rows = [
            HistoryEntry(0, {"x": 0.5, "y": -0.5}, 1.0),
            HistoryEntry(1, {"x": -0.25, "y": 0.25}, 0.5),
            HistoryEntry(2, {"x": 0.0, "y": 0.75}, None),
        ]
        cache = _HistoryCache()
        histories = [rows] + ([[]] if n_startup_trials == 0 else [])
        proposal = self._proposal_for(space)
        for shown in histories:
            try:
                context = self._build_context(
                    StudyDirection.MAXIMIZE, len(shown), space, shown, cache, proposal
                )
                render_prompt(self._template, context)
            except ValueError as error:
                raise ValueError(f"PromptOptions.template: {error}") from error

    def _init_process_state(self) -> None:
        """State of this process only: not pickled, never shared with other workers."""
        self._lock = threading.Lock()
        self._token_budget_warned = False
        # Completed trials never change: their history row, rendered line and token count are
        # cached per study and search space instead of being rebuilt on every call.
        self._caches: dict[tuple[Any, ...], _HistoryCache] = {}
        # Whose each running trial is, decided once at its first call (by trial id): the count of
        # completed trials it depends on grows while the trial runs.
        self._owners: dict[int, _Turn] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_lock", "_token_budget_warned", "_caches", "_template", "_owners"):
            del state[name]
        if self._client_spec is not None:
            del state["_client"]  # SDK clients hold connections; it is built again from the spec
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        spec = self._client_spec
        if spec is not None:
            self._client = create_client(spec.model, base_url=spec.base_url, **dict(spec.options))
        self._template = load_template(self._prompt.template)
        self._init_process_state()

    @property
    def client(self) -> LLMClient:
        """The client that talks to the LLM."""
        return self._client

    @property
    def proposal(self) -> Proposal:
        """What the LLM answers with: the explicit ``proposal``, else the preset's."""
        return self._proposal

    @property
    def base_sampler(self) -> BaseSampler:
        """The sampler of every trial the LLM does not propose, and of the fallbacks."""
        return self._base

    def reseed_rng(self) -> None:
        self._base.reseed_rng()
        self._spread_seed = fresh_seed()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        self._raise_error_if_multi_objective(study)
        turn = self._turn(study, trial)
        if turn == "base":
            return self._base_space(study, trial)
        return {
            name: distribution
            for name, distribution in self._search_space.calculate(study).items()
            if not distribution.single()
        }

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._raise_error_if_multi_objective(study)
        turn = self._turn(study, trial)
        if turn == "base":
            return self._sample_by_base(study, trial, search_space, search_space)
        if not search_space:
            return {}
        trials = study._get_trials(deepcopy=False, use_cache=True)
        if turn == "spread":
            return self._sample_spread(trial, search_space, trials)

        fixed = fixed_params(trial, search_space)
        if len(fixed) == len(search_space):
            return {}  # study.enqueue_trial fixed the whole point: nothing to ask
        record = LLMRecord(model=self._client.model)
        if self._max_total_tokens is not None:
            spent = usage_of_trials(trials).total_tokens
            if spent >= self._max_total_tokens:
                self._warn_token_budget_spent(spent)
                record.fallback = f"token budget spent ({spent} >= {self._max_total_tokens})"
                return self._fall_back(study, trial, search_space, record, fixed)

        cache = self._cache_for(study, search_space)
        rows = collect_history(trials, search_space, exclude_number=trial.number, memo=cache.rows)
        proposal = self._proposal_for(search_space)
        context = self._build_context(
            study.direction, trial.number, search_space, rows, cache, proposal
        )
        messages = render_prompt(self._template, context)
        return self._ask(
            study, trial, search_space, context, messages, record, cache, fixed, proposal
        )

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        self._raise_error_if_multi_objective(study)
        return self._base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        with self._lock:
            self._owners.pop(trial._trial_id, None)
        self._base.after_trial(study, trial, state, values)

    def _turn(self, study: Study, trial: FrozenTrial) -> _Turn:
        """Who samples ``trial`` (see the class docstring), decided at the trial's first call and
        kept until it ends, so its relative search space and its sampling agree.
        """
        with self._lock:
            decided = self._owners.get(trial._trial_id)
        if decided is not None:
            return decided
        trials = study._get_trials(deepcopy=False, use_cache=True, states=(TrialState.COMPLETE,))
        owns = llm_owns(
            trial.number,
            n_complete=len(trials),
            n_startup_trials=self._n_startup_trials,
            llm_share=self._llm_share,
            llm_startup_trials=self._llm_startup_trials,
        )
        owner: _Turn = "llm" if owns else "base"
        stall_after = getattr(self._proposal, "stall_after", None)
        if owns and stall_after is not None and trial.number >= self._llm_startup_trials:
            ordered = sorted(trials, key=lambda t: t.number)
            values = [float(t.value) for t in ordered if t.value is not None]
            if since_moved(values, study.direction) >= stall_after:
                # A base in control refines a good point itself and takes every stalled trial;
                # without one, a share goes to a point far from all tried ones.
                if self._base_in_control:
                    owner = "base"
                elif share_picks(trial.number, HANDOFF_SHARE):
                    owner = "spread"
        with self._lock:
            if len(self._owners) >= _MAX_OWNERS:  # trials that never ended (killed, abandoned)
                self._owners.pop(next(iter(self._owners)))
            self._owners[trial._trial_id] = owner
        return owner

    def _sample_spread(
        self,
        trial: FrozenTrial,
        search_space: Mapping[str, BaseDistribution],
        trials: Sequence[FrozenTrial],
    ) -> dict[str, Any]:
        """A stalled trial's point: :func:`farthest_draw` from every other trial's point, drawn
        from a stream of the seed and the trial's number (so workers never draw alike)."""
        entropy = [self._spread_seed, trial.number, _SPREAD_STREAM]
        rng = np.random.default_rng(np.random.SeedSequence(entropy))
        tried = [t.params for t in trials if t.number != trial.number]
        return farthest_draw(search_space, tried, rng)

    def _sample_by_base(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: Mapping[str, BaseDistribution],
        base_space: dict[str, BaseDistribution],
    ) -> dict[str, Any]:
        """``search_space``'s values from the base sampler: its relative sampling of
        ``base_space`` (a CMA-ES trial of the current generation, a GP or TPE proposal) where it
        has one, its independent sampling for the rest."""
        params: dict[str, Any] = {}
        if self._base_in_control and base_space:
            proposed = self._base.sample_relative(study, trial, base_space)
            params = {name: proposed[name] for name in search_space if name in proposed}
        for name, distribution in search_space.items():
            if name not in params:
                params[name] = self._base.sample_independent(study, trial, name, distribution)
        return params

    def _base_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        """The base sampler's relative search space; none for an independent sampler."""
        if not self._base_in_control:
            return {}
        return self._base.infer_relative_search_space(study, trial)

    def _format_for(self, search_space: Mapping[str, BaseDistribution]) -> AnswerFormat:
        """The answer format for this space: JSON where a name (or a step's ``change_`` name)
        is one the text format cannot carry (a comma, colon, quote, line break...)."""
        if self._answer_format == "text" and not all(map(text_safe_name, search_space)):
            return "json"
        return self._answer_format

    def _build_context(
        self,
        direction: StudyDirection,
        step_number: int,
        search_space: Mapping[str, BaseDistribution],
        rows: Sequence[HistoryEntry],
        cache: _HistoryCache,
        proposal: Proposal,
    ) -> dict[str, Any]:
        function = function_label(list(search_space))
        prompt, history = self._prompt, self._history

        def line_and_tokens(row: HistoryEntry) -> tuple[str, int]:
            cached = None if row.pending else cache.lines.get(row.number)
            if cached is None:
                line = history_line(
                    row,
                    search_space,
                    precision=prompt.precision,
                    function=function,
                    style=history.style,
                )
                cached = (line, estimate_tokens(line) + 1)
                if not row.pending:
                    cache.lines[row.number] = cached
            return cached

        shown = select_history(
            rows,
            direction=direction,
            mode=history.mode,
            best_k=history.best_k,
            recent_k=history.recent_k,
            max_tokens=self._history_tokens,
            line_tokens=lambda row: line_and_tokens(row)[1],
        )
        steps = proposal if isinstance(proposal, StepsFromBest) else None
        step_base = None if steps is None else self._step_base(direction, search_space, rows)
        step_size, since_best = prompt.search_std, 0
        if steps is not None and prompt.search_std is not None:
            step_size, since_best = suggested_step(
                rows,
                search_space,
                direction=direction,
                search_std=prompt.search_std,
                widen_after=steps.widen_after,
            )
        return build_context(
            search_space=search_space,
            rows=shown,
            n_rows_total=sum(not row.pending for row in rows),
            direction=direction,
            step_number=step_number,
            budget=prompt.budget,
            search_std=prompt.search_std,
            expected_optimum=prompt.expected_optimum,
            task_description=prompt.task_description,
            answer_format=self._format_for(
                search_space if step_base is None else step_space(search_space)
            ),
            precision=prompt.precision,
            extra=prompt.template_vars,
            lines=[line_and_tokens(row)[0] for row in shown],
            history_style=history.style,
            hints=proposal.hints,
            n_candidates=proposal.n_candidates,
            step_base=step_base,
            step_tried=[]
            if step_base is None or steps is None
            else tried_changes(
                rows,
                search_space,
                step_base,
                limit=steps.n_tried_changes,
                precision=prompt.precision,
                function=function,
            ),
            step_size=step_size,
            step_since_best=since_best,
            reasoning=self._reasoning,
        )

    def _step_base(
        self,
        direction: StudyDirection,
        search_space: Mapping[str, BaseDistribution],
        rows: Sequence[HistoryEntry],
    ) -> dict[str, Any]:
        """The point answers are changes to: the best completed row, or the middle of the box
        before any trial completed."""
        step_space(search_space)  # a clear ValueError for categorical or log-scale parameters
        best = best_row(rows, direction)
        if best is None:
            return {
                name: (dist.low + dist.high) / 2  # type: ignore[attr-defined]
                for name, dist in search_space.items()
            }
        return dict(best.params)

    def _proposal_for(self, search_space: Mapping[str, BaseDistribution]) -> Proposal:
        """The proposal for this space: a preset's steps from the best point become absolute
        points where a parameter has no plain step (categorical, log scale); an explicit
        :class:`StepsFromBest` keeps its clear error at the first LLM trial."""
        proposal = self._proposal
        if self._proposal_given or not isinstance(proposal, StepsFromBest):
            return proposal
        try:
            step_space(search_space)
        except ValueError:
            return convert_proposal(proposal, AbsolutePoints)
        return proposal

    def _schema(
        self,
        search_space: Mapping[str, BaseDistribution],
        base: Mapping[str, Any] | None,
        n_candidates: int,
    ) -> dict[str, Any] | None:
        answer_space = search_space if base is None else step_space(search_space)
        answer_format = self._format_for(answer_space)
        if answer_format == "compact":
            if not self._client.supports_schema:
                return None
            # The prompt's decimals of each answer (a change spans twice its parameter's range:
            # one decimal fewer on [-7, 7]). Measured with the embedded model: allowed the
            # parameter's two decimals, it copied the best point's digits as "changes".
            decimals = {
                name: shown_decimals(dist, self._prompt.precision)
                for name, dist in answer_space.items()
            }
            return build_compact_schema(
                answer_space,
                n_candidates,
                decimals={k: v for k, v in decimals.items() if v is not None},
                reasoning=self._reasoning,
            )
        if answer_format != "json":
            return None
        if self._answer_format != "json" and not self._client.supports_schema:
            return None  # JSON only because of the names: the prompt asks, the client cannot
        if n_candidates == 1:
            return _without_reasoning(build_json_schema(answer_space), self._reasoning)
        return _without_reasoning(
            build_candidates_schema(answer_space, n_candidates), self._reasoning
        )

    def _ask(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        context: Mapping[str, Any],
        messages: list[Message],
        record: LLMRecord,
        cache: _HistoryCache,
        fixed: Mapping[str, Any],
        proposal: Proposal,
    ) -> dict[str, Any]:
        base = context.get("step_base")
        schema = self._schema(search_space, base, proposal.n_candidates)
        conversation = list(messages)
        answers: set[str] = set()
        problem = "no answer"
        for _ in range(1 + self._max_retries):
            started = time.perf_counter()
            record.attempts += 1
            try:
                completion = self._client.complete(conversation, schema=schema)
            except ProviderConfigError:
                raise
            except Exception as error:
                record.latency_s += time.perf_counter() - started
                if self._on_error == "raise":
                    raise
                record.fallback = f"provider error: {type(error).__name__}: {error}"[:300]
                record.messages = conversation
                _logger.warning(
                    f"Trial {trial.number}: the LLM call failed ({record.fallback}); "
                    "sampling it with the base sampler."
                )
                params = self._fall_back(study, trial, search_space, record, fixed)
                # Logged by the trial that completes the pattern, so once per study.
                outage = provider_outage(study.get_trials(deepcopy=False))
                if outage is not None and trial.number in outage.trials:
                    _logger.error(outage.message())
                return params
            latency = getattr(completion, "latency_s", None)
            if not (isinstance(latency, (int, float)) and math.isfinite(latency) and latency > 0):
                latency = time.perf_counter() - started
            record.latency_s += latency
            # Counts are the server's word: a negative or absurd one is unknown (0), so that it
            # can neither refund nor exhaust max_total_tokens.
            record.prompt_tokens += token_count(getattr(completion, "prompt_tokens", None))
            record.completion_tokens += token_count(getattr(completion, "completion_tokens", None))
            model = getattr(completion, "model", None)
            record.model = model[:200] if isinstance(model, str) and model else record.model
            raw = getattr(completion, "text", None)
            raw = raw if isinstance(raw, str) else ""
            # Parsing sees a bounded text, and the record and the re-ask a bounded excerpt: a
            # huge answer is neither parsed at length, stored, nor sent back whole.
            text, cut = cut_answer(raw)
            record.answer_cut += cut
            repeated = text.strip() in answers
            answers.add(text.strip())
            conversation.append(Message("assistant", answer_excerpt(raw)))
            if repeated:
                # The same text fails for the same reason (parsing is deterministic and the
                # history only grows); a model that ignored the feedback once will mostly ignore
                # it again, so re-asking would only spend calls.
                problem = f"the same answer as before, despite the feedback ({problem})"
                break
            try:
                params = self._accept(
                    study, trial, search_space, text, cache, record, proposal, base, fixed
                )
            except AnswerError as error:
                problem = str(error)
                conversation.append(feedback_message(problem, context))
                continue
            record.messages = conversation
            with self._lock:
                write_record(study._storage, trial._trial_id, record)
            return params
        record.fallback = f"no usable answer after {record.attempts} attempts: {problem}"[:300]
        record.messages = conversation
        _logger.info(
            f"Trial {trial.number}: {record.fallback}; sampling it with the base sampler."
        )
        return self._fall_back(study, trial, search_space, record, fixed)

    def _accept(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        text: str,
        cache: _HistoryCache,
        record: LLMRecord,
        proposal: Proposal,
        base: Mapping[str, Any] | None,
        fixed: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The point an answer proposes, checked against every tried point and claimed; with
        several candidates, the best-scored usable one. Parameters that ``study.enqueue_trial``
        fixed take their fixed values: the point checked and recorded is the one evaluated.

        Raises:
            AnswerError: Nothing in the answer is usable; the message says why.
        """
        try:
            usable, problems = read_candidates(
                text,
                search_space,
                proposal,
                base,
                positional=self._format_for(search_space) == "compact",
            )
        except AnswerError:
            raise
        except Exception as error:  # a parser bug must not crash a study: it is a re-ask
            raise AnswerError(
                f"the answer could not be read ({type(error).__name__}). Answer in the format "
                "asked for."
            ) from error
        if not usable:
            raise AnswerError(" ".join(problems))
        if fixed:
            usable = [
                Candidate({**c.params, **fixed}, c.clipped, c.reasoning, c.changes) for c in usable
            ]
        precision = self._prompt.precision
        memo = cache.rows

        def shown_key_of(row: HistoryEntry) -> tuple[str, ...]:
            # Completed rows never change: their key is computed once per study.
            key = None if row.pending else cache.keys.get(row.number)
            if key is None:
                key = shown_key(row.params, search_space, precision)
                if not row.pending:
                    cache.keys[row.number] = key
            return key

        with self._lock:
            # Read the trials fresh: other threads and processes proposed and finished trials
            # while the LLM was answering (the memo keeps completed trials cheap to re-read).
            # Waiting trials too: an enqueued point will be evaluated, so it is not proposed again.
            trials = study._storage.get_all_trials(
                study._study_id,
                deepcopy=False,
                states=(TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING),
            )
            rows = collect_history(trials, search_space, exclude_number=trial.number, memo=memo)
            shown = rows_by_shown_key(rows, search_space, precision, key_of=shown_key_of)
            fresh = []
            for candidate in usable:
                problem = repeat_problem(
                    candidate,
                    search_space,
                    rows,
                    precision=precision,
                    min_distance=proposal.min_distance,
                    shown=shown,
                    out_of_range=proposal.out_of_range,
                )
                if problem is None:
                    fresh.append(candidate)
                elif problem not in problems:
                    problems.append(problem)
            if not fresh:
                raise AnswerError(" ".join(problems))
            chosen = choose(fresh, rows, search_space, study.direction)
            record.reasoning = chosen.reasoning
            record.clipped = chosen.clipped
            record.proposal = chosen.params
            record.candidates = len(fresh) if proposal.n_candidates > 1 else 0
            chosen_key = shown_key(chosen.params, search_space, precision)
            # Publish, then check again: a worker in another process may have published the same
            # point since the read above; of two such workers at least one sees the other.
            holder = claim_proposal(
                study._storage,
                study._study_id,
                trial,
                chosen.params,
                search_space,
                memo=memo,
                holds=lambda row: shown_key_of(row) == chosen_key,
            )
        if holder is not None:
            point = show_point(chosen.params, search_space, precision)
            raise AnswerError(
                f"the point ({point}) is being evaluated right now (trial {holder.number}). "
                "Propose a different point."
            )
        return chosen.params

    def _fall_back(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: Mapping[str, BaseDistribution],
        record: LLMRecord,
        fixed: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        # The base sampler's own trial, as if the LLM had not been asked.
        params = self._sample_by_base(study, trial, search_space, self._base_space(study, trial))
        params.update(fixed or {})  # the trial evaluates the enqueued values, so they are recorded
        record.proposal = params
        with self._lock:
            write_record(study._storage, trial._trial_id, record)
        return params

    def _cache_for(
        self, study: Study, search_space: Mapping[str, BaseDistribution]
    ) -> _HistoryCache:
        key = (id(study._storage), study._study_id, tuple(search_space.items()))
        with self._lock:
            cache = self._caches.get(key)
            if cache is None:
                if len(self._caches) >= 8:  # dynamic spaces: keep the memory bounded
                    self._caches.pop(next(iter(self._caches)))
                cache = self._caches[key] = _HistoryCache()
        return cache

    def _warn_token_budget_spent(self, spent: int) -> None:
        with self._lock:
            if self._token_budget_warned:
                return
            self._token_budget_warned = True
        _logger.warning(
            f"The LLM token budget is spent ({spent} tokens >= max_total_tokens="
            f"{self._max_total_tokens}); further trials use the base sampler."
        )


def _auto_format(client: LLMClient, runs_locally: bool) -> AnswerFormat:
    """``answer_format="auto"``: the values alone for a local model that takes a schema (its
    cost is generation, ~0.1 s a token on two cores), else JSON or the tutorial's text."""
    if not client.supports_schema:
        return "text"
    return "compact" if runs_locally else "json"


def _without_reasoning(schema: dict[str, Any], reasoning: bool) -> dict[str, Any]:
    """``schema`` without its reasoning key (its last property) when no reason is asked for."""
    if reasoning:
        return schema
    *kept, _ = schema["properties"]
    properties = {key: schema["properties"][key] for key in kept}
    return {**schema, "properties": properties, "required": kept}


def _check_group(name: str, value: object, kind: type | tuple[type, ...]) -> None:
    """A clear error for a dict or a wrong object where an option group belongs."""
    if value is None or isinstance(value, kind):
        return
    kinds = kind if isinstance(kind, tuple) else (kind,)
    expected = " or ".join(k.__name__ for k in kinds)
    raise ValueError(
        f"{name} must be {expected} or None, got {type(value).__name__}; for example "
        f"{name}={kinds[0].__name__}(...)."
    )
