"""LLMSampler: an Optuna sampler that asks a large language model for the next trial."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import math
import os
import threading
import time
from typing import Any
from typing import Literal
from typing import TYPE_CHECKING

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.samplers import RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_llm_sampler._distributed import claim_proposal
from optuna_llm_sampler._history import best_row
from optuna_llm_sampler._history import collect_history
from optuna_llm_sampler._history import estimate_tokens
from optuna_llm_sampler._history import HistoryEntry
from optuna_llm_sampler._history import HistoryMode
from optuna_llm_sampler._history import select_history
from optuna_llm_sampler._parse import add_changes
from optuna_llm_sampler._parse import AnswerError
from optuna_llm_sampler._parse import build_candidates_schema
from optuna_llm_sampler._parse import build_json_schema
from optuna_llm_sampler._parse import changes_out_of_range
from optuna_llm_sampler._parse import find_near
from optuna_llm_sampler._parse import OutOfRange
from optuna_llm_sampler._parse import parse_answer
from optuna_llm_sampler._parse import parse_candidates
from optuna_llm_sampler._parse import ParsedAnswer
from optuna_llm_sampler._parse import point_key
from optuna_llm_sampler._parse import show_value
from optuna_llm_sampler._parse import snap_params
from optuna_llm_sampler._parse import STEP_PREFIX
from optuna_llm_sampler._parse import step_space
from optuna_llm_sampler._prompt import AnswerFormat
from optuna_llm_sampler._prompt import build_context
from optuna_llm_sampler._prompt import feedback_message
from optuna_llm_sampler._prompt import format_param
from optuna_llm_sampler._prompt import function_label
from optuna_llm_sampler._prompt import history_line
from optuna_llm_sampler._prompt import HISTORY_STYLES
from optuna_llm_sampler._prompt import HistoryStyle
from optuna_llm_sampler._prompt import load_template
from optuna_llm_sampler._prompt import render_prompt
from optuna_llm_sampler._prompt import suggested_step
from optuna_llm_sampler._prompt import tried_changes
from optuna_llm_sampler._records import LLMRecord
from optuna_llm_sampler._records import usage_of_trials
from optuna_llm_sampler._records import write_record
from optuna_llm_sampler._select import score_candidates
from optuna_llm_sampler.providers._base import LLMClient
from optuna_llm_sampler.providers._base import Message
from optuna_llm_sampler.providers._base import ProviderConfigError
from optuna_llm_sampler.providers._registry import create_client


if TYPE_CHECKING:
    from optuna.study import Study


_logger = optuna.logging.get_logger(f"optuna.{__name__}")

OnError = Literal["fallback", "raise"]


@dataclass
class _HistoryCache:
    rows: dict[int, HistoryEntry | None] = field(default_factory=dict)
    lines: dict[int, tuple[str, int]] = field(default_factory=dict)


class LLMSampler(BaseSampler):
    """Sampler that asks a large language model for the next parameters (prompted policy search).

    On each trial after the first ``n_startup_trials``, the sampler renders the study's history
    into a Jinja prompt (by default the ProPS tutorial's), asks the LLM for one point of the
    relative search space, validates and snaps the answer into Optuna's distributions, and
    re-asks with the problem fed back when the answer is unusable or repeats a completed or
    pending trial. If no usable answer comes within ``max_retries`` re-asks, or the provider fails,
    the trial is sampled by ``independent_sampler`` and the reason is recorded. No answer of the
    LLM can crash a study.

    Every LLM-sampled trial carries short user attributes (``llm_model``, ``llm_prompt_tokens``,
    ``llm_completion_tokens``, ``llm_latency_s``, ``llm_attempts``, ``llm_reasoning`` and, when
    it fell back, ``llm_fallback``); the whole conversation is kept in system attributes and read
    back with :func:`~optuna_llm_sampler.get_llm_record`.

    Example:
        .. code-block:: python

            import optuna
            from optuna_llm_sampler import LLMSampler


            def objective(trial):
                a = trial.suggest_float("a", -7, 7)
                b = trial.suggest_float("b", -7, 7)
                return -((a - 1) ** 2) - (b - 5) ** 2


            sampler = LLMSampler(model="gpt-4o", n_startup_trials=20, search_std=1.0, seed=0)
            study = optuna.create_study(direction="maximize", sampler=sampler)
            study.optimize(objective, n_trials=100)

    Args:
        model: A model string (``"gpt-4o"``, ``"openai:gpt-4o-mini"``,
            ``"gemini:gemini-2.0-flash"``, ``"local"`` for the embedded offline model,
            ``"local:/path/model.gguf"``) or any object implementing
            :class:`~optuna_llm_sampler.LLMClient`.
        base_url: The provider's endpoint, e.g. an OpenAI-compatible server
            (``"http://127.0.0.1:8080/v1"``). Only with a model string.
        api_key: The provider's API key; by default read from the environment
            (``OPENAI_API_KEY``, ``GEMINI_API_KEY``). Never written to storage or logs.
        provider_options: Further keyword arguments for the provider's client (timeouts,
            temperature, ``cache=``...). Only with a model string.
        n_startup_trials: Completed trials sampled by ``independent_sampler`` before the LLM is
            asked (the tutorial's 20 warmup episodes).
        search_std: The step size the prompt suggests for exploration, or ``None`` to omit it.
        expected_optimum: A hint in the prompt ("the expected optimum value should be over 50"),
            or ``None``.
        task_description: What the parameters and the objective mean, in a sentence or two, shown
            instead of "assume no prior knowledge" (ProPS+). ``None`` keeps the tutorial's prompt.
        budget: The number of trials the study will run, told to the LLM as ``MAX_STEPS``, or
            ``None`` to leave it out.
        template: A Jinja template (source string or path to a ``.j2`` file) replacing the
            default prompt; see docs/prompts.md for its variables.
        template_vars: Extra variables for a custom template.
        answer_format: ``"json"`` (a JSON object, with the provider's structured output),
            ``"text"`` (the tutorial's two lines) or ``"auto"`` (JSON when the client supports a
            schema).
        history: ``"all"`` shows every completed trial, as the tutorial does; ``"best_recent"``
            shows the ``history_best_k`` best and ``history_recent_k`` most recent.
        history_best_k: Best trials kept by ``"best_recent"``.
        history_recent_k: Most recent trials kept by ``"best_recent"``.
        max_history_tokens: A token budget for the history table; rows are admitted best and most
            recent first until it is spent, so the prompt stops growing. ``None`` for no budget.
        precision: Digits of numbers in the prompt, or ``None`` for full precision like the
            tutorial: objective values keep ``precision`` significant digits, parameters the
            decimals that give their largest bound that many (two decimals on [-7, 7] with 3).
        history_style: ``"csv"`` rows under a header (``-0.3,2.91,12.5``, about 15 tokens for
            two parameters) or the tutorial's ``a: -0.3; b: 2.91; f(a,b): 12.5`` (about 25).
        hints: Add the best point so far and each parameter's least explored slice of its range
            to the end of the prompt (helps small models leave the region they started in).
        min_distance: Treat a proposal closer than this to an evaluated or running point (largest
            difference over the numeric parameters; log10 units for log-scale ones) as a
            duplicate and re-ask. ``None`` rejects exact repeats only.
        n_candidates: Ask for this many different points per call and evaluate the usable one
            with the highest expected improvement under a small Gaussian-process model of the
            history (LLAMBO-style). The LLM stays in charge: the trial always gets one of its
            candidates.
        steps_from_best: Ask for changes to the best point so far (``change_a``, ...) instead
            of absolute values; the trial evaluates best + change. The LLM still chooses every
            value (a change may reach any point of the box), but small models, which copy rows
            of the history or alter a last digit, then propose real steps. Linear numeric
            parameters only (a ``ValueError`` names any other).
        n_tried_changes: With ``steps_from_best``, how many tried points nearest the best the
            prompt lists as changes from it, with their values ("change_a: 1; change_b: 0;
            f(a,b): 71.2"), so the model sees which steps are spent without subtracting. ``0``
            lists none.
        widen_steps_after: With ``steps_from_best``, double the step the prompt suggests
            (``search_std``) for every this many trials completed since the best one, up to half
            the widest range, so a model stuck on a plateau looks further away. ``None`` keeps
            ``search_std``.
        out_of_range: ``"reject"`` re-asks when a value leaves its range; ``"clip"`` moves it to
            the nearest bound and records it in ``llm_clipped``.
        max_retries: Re-asks per trial after an unusable or duplicate answer. An answer that
            repeats an earlier one of the same trial word for word ends the re-asks (it would
            fail again for the same reason): the trial falls back at once.
        max_total_tokens: A study-wide budget of prompt + completion tokens (summed from storage,
            so shared by all workers). Once spent, trials fall back with one logged warning.
        on_error: ``"fallback"`` samples a trial with ``independent_sampler`` when the provider
            fails; ``"raise"`` stops the study. Configuration errors (missing or rejected key,
            unknown model) always raise.
        independent_sampler: Samples the startup trials, parameters outside the relative search
            space, and every fallback. Defaults to ``RandomSampler(seed=seed)``.
        seed: Seed of the default independent sampler.
        dashboard_notes: Write a Markdown note per LLM trial (reasoning, proposal, prompt excerpt)
            that optuna-dashboard shows, when optuna-dashboard is installed.

    Raises:
        ValueError: An argument is invalid (the message names it).
        ProviderConfigError: The provider cannot be used (missing extra or API key), raised here,
            before the first trial.
    """

    def __init__(
        self,
        *,
        model: str | LLMClient,
        base_url: str | None = None,
        api_key: str | None = None,
        provider_options: Mapping[str, Any] | None = None,
        n_startup_trials: int = 20,
        search_std: float | None = 1.0,
        expected_optimum: float | None = None,
        task_description: str | None = None,
        budget: int | None = None,
        template: str | os.PathLike[str] | None = None,
        template_vars: Mapping[str, Any] | None = None,
        answer_format: Literal["auto", "json", "text"] = "auto",
        history: HistoryMode = "all",
        history_best_k: int = 20,
        history_recent_k: int = 20,
        max_history_tokens: int | None = None,
        precision: int | None = 3,
        history_style: HistoryStyle = "csv",
        hints: bool = False,
        min_distance: float | None = None,
        n_candidates: int = 1,
        steps_from_best: bool = False,
        n_tried_changes: int = 8,
        widen_steps_after: int | None = None,
        out_of_range: OutOfRange = "reject",
        max_retries: int = 3,
        max_total_tokens: int | None = None,
        on_error: OnError = "fallback",
        independent_sampler: BaseSampler | None = None,
        seed: int | None = None,
        dashboard_notes: bool = True,
    ) -> None:
        if n_startup_trials < 0:
            raise ValueError(f"n_startup_trials must be non-negative, got {n_startup_trials}.")
        if search_std is not None and not (math.isfinite(search_std) and search_std > 0):
            raise ValueError(f"search_std must be positive or None, got {search_std}.")
        if budget is not None and budget <= 0:
            raise ValueError(f"budget must be positive or None, got {budget}.")
        if answer_format not in ("auto", "json", "text"):
            raise ValueError(
                f"answer_format must be 'auto', 'json' or 'text', got {answer_format!r}."
            )
        if history not in ("all", "best_recent"):
            raise ValueError(f"history must be 'all' or 'best_recent', got {history!r}.")
        if history_best_k < 0 or history_recent_k < 0:
            raise ValueError(
                "history_best_k and history_recent_k must be non-negative, "
                f"got {history_best_k} and {history_recent_k}."
            )
        if history == "best_recent" and history_best_k + history_recent_k == 0:
            raise ValueError("history='best_recent' needs history_best_k or history_recent_k > 0.")
        if max_history_tokens is not None and max_history_tokens <= 0:
            raise ValueError(f"max_history_tokens must be positive, got {max_history_tokens}.")
        if precision is not None and not 1 <= precision <= 17:
            raise ValueError(f"precision must be between 1 and 17 or None, got {precision}.")
        if history_style not in HISTORY_STYLES:
            raise ValueError(
                f"history_style must be one of {', '.join(HISTORY_STYLES)}, got {history_style!r}."
            )
        if n_candidates < 1:
            raise ValueError(f"n_candidates must be at least 1, got {n_candidates}.")
        if n_tried_changes < 0:
            raise ValueError(f"n_tried_changes must be non-negative, got {n_tried_changes}.")
        if widen_steps_after is not None and widen_steps_after < 1:
            raise ValueError(
                f"widen_steps_after must be at least 1 or None, got {widen_steps_after}."
            )
        if widen_steps_after is not None and search_std is None:
            raise ValueError("widen_steps_after needs a search_std to widen; set search_std.")
        if min_distance is not None and not (math.isfinite(min_distance) and min_distance > 0):
            raise ValueError(f"min_distance must be positive or None, got {min_distance}.")
        if out_of_range not in ("reject", "clip"):
            raise ValueError(f"out_of_range must be 'reject' or 'clip', got {out_of_range!r}.")
        if max_retries < 0:
            raise ValueError(f"max_retries must be non-negative, got {max_retries}.")
        if max_total_tokens is not None and max_total_tokens <= 0:
            raise ValueError(f"max_total_tokens must be positive, got {max_total_tokens}.")
        if on_error not in ("fallback", "raise"):
            raise ValueError(f"on_error must be 'fallback' or 'raise', got {on_error!r}.")

        if isinstance(model, str):
            self._client: LLMClient = create_client(
                model, base_url=base_url, api_key=api_key, **dict(provider_options or {})
            )
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

        self._template = load_template(template)
        self._template_vars = dict(template_vars or {})
        self._answer_format: AnswerFormat = (
            ("json" if self._client.supports_schema else "text")
            if answer_format == "auto"
            else answer_format
        )
        self._n_startup_trials = n_startup_trials
        self._search_std = search_std
        self._expected_optimum = expected_optimum
        self._task_description = task_description
        self._budget = budget
        self._history: HistoryMode = history
        self._history_best_k = history_best_k
        self._history_recent_k = history_recent_k
        self._max_history_tokens = max_history_tokens
        self._precision = precision
        self._history_style: HistoryStyle = history_style
        self._hints = hints
        self._min_distance = min_distance
        self._n_candidates = n_candidates
        self._steps_from_best = steps_from_best
        self._n_tried_changes = n_tried_changes
        self._widen_steps_after = widen_steps_after
        self._out_of_range: OutOfRange = out_of_range
        self._max_retries = max_retries
        self._max_total_tokens = max_total_tokens
        self._on_error: OnError = on_error
        self._independent_sampler = independent_sampler or RandomSampler(seed=seed)
        self._search_space = IntersectionSearchSpace(include_pruned=True)
        self._lock = threading.Lock()
        self._budget_warned = False
        self._dashboard_notes = dashboard_notes
        # Completed trials never change: their history row, rendered line and token count are
        # cached per study and search space instead of being rebuilt on every call.
        self._caches: dict[tuple[Any, ...], _HistoryCache] = {}

    @property
    def client(self) -> LLMClient:
        """The client that talks to the LLM."""
        return self._client

    def reseed_rng(self) -> None:
        self._independent_sampler.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        self._raise_error_if_multi_objective(study)
        return {
            name: distribution
            for name, distribution in self._search_space.calculate(study).items()
            if not distribution.single()
        }

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._raise_error_if_multi_objective(study)
        if not search_space:
            return {}
        trials = study._get_trials(deepcopy=False, use_cache=True)
        n_complete = sum(t.state == TrialState.COMPLETE for t in trials)
        if n_complete < self._n_startup_trials:
            return {}

        record = LLMRecord(model=self._client.model)
        if self._max_total_tokens is not None:
            spent = usage_of_trials(trials).total_tokens
            if spent >= self._max_total_tokens:
                self._warn_budget_spent(spent)
                record.fallback = f"token budget spent ({spent} >= {self._max_total_tokens})"
                return self._fall_back(study, trial, search_space, record)

        cache = self._cache_for(study, search_space)
        rows = collect_history(trials, search_space, exclude_number=trial.number, memo=cache.rows)
        context = self._context(study, trial, search_space, rows, cache)
        messages = render_prompt(self._template, context)
        return self._ask(study, trial, search_space, context, messages, record, cache.rows)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        self._raise_error_if_multi_objective(study)
        return self._independent_sampler.sample_independent(
            study, trial, param_name, param_distribution
        )

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._independent_sampler.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._independent_sampler.after_trial(study, trial, state, values)

    def _context(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: Mapping[str, BaseDistribution],
        rows: Sequence[HistoryEntry],
        cache: _HistoryCache,
    ) -> dict[str, Any]:
        function = function_label(list(search_space))

        def line_and_tokens(row: HistoryEntry) -> tuple[str, int]:
            cached = None if row.pending else cache.lines.get(row.number)
            if cached is None:
                line = history_line(
                    row,
                    search_space,
                    precision=self._precision,
                    function=function,
                    style=self._history_style,
                )
                cached = (line, estimate_tokens(line) + 1)
                if not row.pending:
                    cache.lines[row.number] = cached
            return cached

        shown = select_history(
            rows,
            direction=study.direction,
            mode=self._history,
            best_k=self._history_best_k,
            recent_k=self._history_recent_k,
            max_tokens=self._max_history_tokens,
            line_tokens=lambda row: line_and_tokens(row)[1],
        )
        step_base = self._step_base(study, search_space, rows)
        step_size, since_best = self._search_std, 0
        if step_base is not None and self._search_std is not None:
            step_size, since_best = suggested_step(
                rows,
                search_space,
                direction=study.direction,
                search_std=self._search_std,
                widen_after=self._widen_steps_after,
            )
        return build_context(
            search_space=search_space,
            rows=shown,
            n_rows_total=sum(not row.pending for row in rows),
            direction=study.direction,
            step_number=trial.number,
            budget=self._budget,
            search_std=self._search_std,
            expected_optimum=self._expected_optimum,
            task_description=self._task_description,
            answer_format=self._answer_format,
            precision=self._precision,
            extra=self._template_vars,
            lines=[line_and_tokens(row)[0] for row in shown],
            history_style=self._history_style,
            hints=self._hints,
            n_candidates=self._n_candidates,
            step_base=step_base,
            step_tried=[]
            if step_base is None
            else tried_changes(
                rows,
                search_space,
                step_base,
                limit=self._n_tried_changes,
                precision=self._precision,
                function=function,
            ),
            step_size=step_size,
            step_since_best=since_best,
        )

    def _step_base(
        self,
        study: Study,
        search_space: Mapping[str, BaseDistribution],
        rows: Sequence[HistoryEntry],
    ) -> dict[str, Any] | None:
        """The point answers are changes to, with ``steps_from_best``: the best completed row,
        or the middle of the box before any trial completed."""
        if not self._steps_from_best:
            return None
        step_space(search_space)  # a clear ValueError for categorical or log-scale parameters
        best = best_row(rows, study.direction)
        if best is None:
            return {
                name: (dist.low + dist.high) / 2  # type: ignore[attr-defined]
                for name, dist in search_space.items()
            }
        return dict(best.params)

    def _ask(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        context: Mapping[str, Any],
        messages: list[Message],
        record: LLMRecord,
        memo: dict[int, HistoryEntry | None],
    ) -> dict[str, Any]:
        schema = None
        base = context.get("step_base")
        answer_space = search_space if base is None else step_space(search_space)
        if self._answer_format == "json":
            schema = (
                build_json_schema(answer_space)
                if self._n_candidates == 1
                else build_candidates_schema(answer_space, self._n_candidates)
            )
        conversation = list(messages)
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
                    "sampling it with the independent sampler."
                )
                return self._fall_back(study, trial, search_space, record)
            record.latency_s += completion.latency_s or (time.perf_counter() - started)
            record.prompt_tokens += completion.prompt_tokens or 0
            record.completion_tokens += completion.completion_tokens or 0
            record.model = completion.model or record.model
            repeated = any(
                m.role == "assistant" and m.content.strip() == completion.text.strip()
                for m in conversation[len(messages) :]
            )
            conversation.append(Message("assistant", completion.text))
            if repeated:
                # The same text fails for the same reason (parsing is deterministic and the
                # history only grows); a model that ignored the feedback once will mostly ignore
                # it again, so re-asking would only spend calls.
                problem = f"the same answer as before, despite the feedback ({problem})"
                break
            try:
                params = self._accept(
                    study, trial, search_space, completion.text, memo, record, base
                )
            except AnswerError as error:
                problem = str(error)
                conversation.append(feedback_message(problem, context))
                continue
            record.messages = conversation
            with self._lock:
                write_record(study._storage, trial._trial_id, record)
            self._write_note(study, trial, record)
            return params
        record.fallback = f"no usable answer after {record.attempts} attempts: {problem}"[:300]
        record.messages = conversation
        _logger.info(
            f"Trial {trial.number}: {record.fallback}; sampling it with the independent sampler."
        )
        return self._fall_back(study, trial, search_space, record)

    def _accept(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        text: str,
        memo: dict[int, HistoryEntry | None],
        record: LLMRecord,
        base: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The point an answer proposes, checked against every tried point and published as
        pending; with several candidates, the best-scored usable one. With ``base``, the answer
        holds changes to that point.

        Raises:
            AnswerError: Nothing in the answer is usable; the message says why.
        """
        answer_space = search_space if base is None else step_space(search_space)
        if self._n_candidates == 1:
            answers = [parse_answer(text, answer_space)]
        else:
            answers = parse_candidates(text, answer_space)
        problems: list[str] = []
        # Each point with the changes the model wrote for it (``None`` for absolute answers), so
        # feedback quotes the model's own numbers even when the point was clipped to the box.
        points: list[tuple[ParsedAnswer, Mapping[str, Any] | None]] = []
        for answer in answers:
            if base is None:
                points.append((answer, None))
                continue
            problem = (
                changes_out_of_range(base, answer, search_space)
                if self._out_of_range == "reject"
                else None
            )
            if problem is None:
                points.append((add_changes(base, answer), answer.values))
            elif problem not in problems:
                problems.append(problem)
        usable: list[tuple[dict[str, Any], list[str], str, Mapping[str, Any] | None]] = []
        for answer, changes in points:
            try:
                params, clipped = snap_params(
                    answer.values, search_space, out_of_range=self._out_of_range
                )
            except AnswerError as error:
                problems.append(str(error))
                continue
            usable.append((params, clipped, answer.reasoning, changes))
        if not usable:
            raise AnswerError(" ".join(problems))
        with self._lock:
            # Read the trials fresh: other threads and processes proposed and finished trials
            # while the LLM was answering (the memo keeps completed trials cheap to re-read).
            trials = study._storage.get_all_trials(
                study._study_id, deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)
            )
            rows = collect_history(trials, search_space, exclude_number=trial.number, memo=memo)
            known = {point_key(row.params, search_space): row for row in rows}
            fresh = []
            for candidate in usable:
                params, clipped, _, changes = candidate
                problem = self._repeat_problem(
                    params, search_space, known, rows, changes=changes, clipped=clipped
                )
                if problem is None:
                    fresh.append(candidate)
                elif problem not in problems:
                    problems.append(problem)
            if not fresh:
                raise AnswerError(" ".join(problems))
            choice = 0
            if len(fresh) > 1:
                scores = score_candidates(
                    [params for params, _, _, _ in fresh],
                    rows,
                    search_space,
                    direction=study.direction,
                )
                choice = max(range(len(fresh)), key=lambda k: scores[k])
            params, clipped, reasoning, _ = fresh[choice]
            record.reasoning = reasoning
            record.clipped = clipped
            record.proposal = params
            record.candidates = len(fresh) if self._n_candidates > 1 else 0
            # Publish, then check again: a worker in another process may have published the same
            # point since the read above; of two such workers at least one sees the other.
            holder = claim_proposal(
                study._storage, study._study_id, trial, params, search_space, memo=memo
            )
        if holder is not None:
            point = self._show_point(params, search_space)
            raise AnswerError(
                f"the point ({point}) is being evaluated right now (trial {holder.number}). "
                "Propose a different point."
            )
        return params

    def _show_point(
        self, params: Mapping[str, Any], search_space: Mapping[str, BaseDistribution]
    ) -> str:
        """A point as the prompt shows numbers: the model copies what it reads, so feedback with
        full-precision values would invite it to repeat them digit for digit."""
        return ", ".join(
            f"{name}: {format_param(params[name], dist, self._precision)}"
            for name, dist in search_space.items()
        )

    def _repeat_problem(
        self,
        params: Mapping[str, Any],
        search_space: Mapping[str, BaseDistribution],
        known: Mapping[tuple[Any, ...], HistoryEntry],
        rows: Sequence[HistoryEntry],
        *,
        changes: Mapping[str, Any] | None = None,
        clipped: Sequence[str] = (),
    ) -> str | None:
        """Why ``params`` repeats a tried point (exactly or within ``min_distance``), if so; with
        ``changes`` (steps from the best), the message names them as the model wrote them and
        says when the box's edge moved the point."""
        point = self._show_point(params, search_space)
        subject = f"the point ({point})"
        if changes is not None:
            written = ", ".join(
                f"{STEP_PREFIX}{name}: {show_value(changes[STEP_PREFIX + name])}"
                for name in search_space
            )
            edge = ""
            if clipped:
                edge = f", stopped at the edge of the range for {', '.join(clipped)}"
            subject = f"the changes ({written}) lead to the point ({point}{edge}), which"
        duplicate = known.get(point_key(params, search_space))
        if duplicate is not None:
            when = "is being evaluated right now" if duplicate.pending else "was already evaluated"
            return f"{subject} {when} (trial {duplicate.number}). Propose a different point."
        if self._min_distance is None:
            return None
        near = find_near(params, rows, search_space, self._min_distance)
        if near is None:
            return None
        row, distance = near
        other = self._show_point(row.params, search_space)
        return (
            f"{subject} is only {distance:.3g} away from ({other}) of trial "
            f"{row.number}. Propose a point at least {self._min_distance:g} away from every "
            "point tried so far."
        )

    def _fall_back(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: Mapping[str, BaseDistribution],
        record: LLMRecord,
    ) -> dict[str, Any]:
        params = {
            name: self._independent_sampler.sample_independent(study, trial, name, distribution)
            for name, distribution in search_space.items()
        }
        record.proposal = params
        with self._lock:
            write_record(study._storage, trial._trial_id, record)
        self._write_note(study, trial, record)
        return params

    def _write_note(self, study: Study, trial: FrozenTrial, record: LLMRecord) -> None:
        if not self._dashboard_notes:
            return
        # Imported here: the module is light, but this keeps the sampler's import graph small.
        from optuna_llm_sampler._dashboard import write_trial_note

        write_trial_note(study, trial, record)  # a no-op without optuna-dashboard; never raises

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

    def _warn_budget_spent(self, spent: int) -> None:
        with self._lock:
            if self._budget_warned:
                return
            self._budget_warned = True
        _logger.warning(
            f"The LLM token budget is spent ({spent} tokens >= max_total_tokens="
            f"{self._max_total_tokens}); further trials use the independent sampler."
        )
