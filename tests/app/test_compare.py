"""``compare``: samplers x seeds in one storage, resume, a summary recomputed from the storage, the
plot, custom objectives, the CLI, and the LLM sampler through a local stub of the OpenAI API."""

from __future__ import annotations

from collections.abc import Iterator
import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
import pytest

from optuna_llm_sampler.app import compare
from optuna_llm_sampler.app import LinearPolicyFactory
from optuna_llm_sampler.app import LinearPolicyRescore
from optuna_llm_sampler.app._compare import OBJECTIVE_S
from optuna_llm_sampler.app._compare import Spread
from optuna_llm_sampler.app._storage import open_storage
from optuna_llm_sampler.app.cli import main
from tests.app._responders import random_point_responder
from tests.providers.stub_server import StubLLMServer


MC = "MountainCarContinuous-v0"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def quadratic_factory(seed: int):
    """A custom objective, as a user writes it: a module-level factory(seed) -> objective."""
    offset = 0.1 * seed

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5, 5)
        y = trial.suggest_float("y", -5, 5)
        return (x - 1 - offset) ** 2 + (y + 2) ** 2

    return objective


#: Trial numbers at which ``failing_factory``'s objective raises (n_jobs=1 only: module state).
FAIL_AT: set[int] = set()


def failing_factory(seed: int):
    inner = quadratic_factory(seed)

    def objective(trial: optuna.Trial) -> float:
        if trial.number in FAIL_AT:
            raise RuntimeError(f"simulated crash at trial {trial.number}")
        return inner(trial)

    return objective


def seed0_crashes_at_trial_4(seed: int):
    inner = quadratic_factory(seed)

    def objective(trial: optuna.Trial) -> float:
        if seed == 0 and trial.number == 4:
            raise RuntimeError("simulated crash at trial 4")
        return inner(trial)

    return objective


def _load(name: str, url: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(url))


def _read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return {row["sampler"]: row for row in csv.DictReader(f)}


def _complete_values(study: optuna.Study) -> list[float]:
    return [float(t.value) for t in study.trials if t.value is not None]


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5_000
    import matplotlib.image

    image = matplotlib.image.imread(str(path))
    assert image.shape[0] > 200 and image.shape[1] > 300


def test_compare_runs_every_sampler_and_seed_and_summarizes_from_storage(in_tmp: Path) -> None:
    storage = "journal:cmp/compare.log"
    threshold = 0.0
    result = compare(
        LinearPolicyFactory(MC, n_eval_episodes=3),
        name=MC,
        samplers=("random", "tpe", "qmc"),
        seeds=2,
        n_trials=15,
        storage=storage,
        out="cmp",
        n_jobs=2,
        threshold=threshold,
        rescore=LinearPolicyRescore(MC, n_episodes=5),
        progress=True,
        echo=lambda line: None,
    )
    assert not result.errors
    assert [r.sampler for r in result.samplers] == ["random", "tpe", "qmc"]
    summary = _read_csv(in_tmp / "cmp" / "summary.csv")
    assert set(summary) == {"random", "tpe", "qmc"}

    names = {s.study_name for s in optuna.get_all_study_summaries(open_storage(storage))}
    for sampler in ("random", "tpe", "qmc"):
        best10, best15, to_threshold, rescored = [], [], [], []
        for seed in (0, 1):
            name = f"compare-{MC}-{sampler}-seed{seed}"
            assert name in names
            study = _load(name, storage)
            assert study.user_attrs["sampler"] == sampler and study.user_attrs["seed"] == seed
            values = _complete_values(study)
            assert len(values) == 15
            assert all(t.user_attrs[OBJECTIVE_S] >= 0 for t in study.trials)
            # Recomputed independently of the package, from the trials' values.
            best10.append(max(values[:10]))
            best15.append(max(values))
            hits = [i + 1 for i, v in enumerate(values) if v >= threshold]
            to_threshold.append(hits[0] if hits else math.inf)
            rescored.append(study.user_attrs["rescored_best"])
            assert study.user_attrs["rescored_trial"] == study.best_trial.number
        row = summary[sampler]
        assert float(row["best_at_10_median"]) == pytest.approx(np.median(best10))
        assert float(row["best_at_10_min"]) == pytest.approx(min(best10))
        assert float(row["best_at_15_max"]) == pytest.approx(max(best15))
        assert int(row["seeds_reaching_threshold"]) == sum(math.isfinite(t) for t in to_threshold)
        assert float(row["trials_to_threshold_median"]) == pytest.approx(
            np.percentile(to_threshold, 50, method="higher")
        )
        assert float(row["rescored_best_median"]) == pytest.approx(np.median(rescored))
        assert float(row["sampler_ms_per_trial_median"]) > 0
        assert result.sampler(sampler).best_at[10].median == pytest.approx(np.median(best10))

    text = result.summary_md.read_text()
    assert f"# Sampler comparison: {MC}" in text
    assert "| sampler | seeds | best @10 | best @15 | trials to 0 | 95% CI |" in text
    assert "optuna-dashboard cmp/compare.log" in text
    assert (in_tmp / "cmp" / "studies.csv").read_text().count("\n") == 1 + 6
    _assert_png(in_tmp / "cmp" / "best_so_far.png")


def test_resume_finishes_partial_studies_and_skips_finished_ones(in_tmp: Path) -> None:
    storage = "sqlite:///resume.db"
    lines: list[str] = []
    options: dict[str, Any] = dict(
        name="quadratic",
        samplers=("random", "tpe"),
        seeds=[3, 5],
        storage=storage,
        out="out",
        n_jobs=1,
        direction="minimize",
        progress=False,
        echo=lines.append,
    )
    compare(quadratic_factory, n_trials=8, **options)
    name = "compare-quadratic-tpe-seed5"
    first = optuna.load_study(study_name=name, storage=storage).trials
    # A worker killed mid-trial leaves a RUNNING trial behind.
    optuna.load_study(study_name=name, storage=storage).ask()

    lines.clear()
    result = compare(quadratic_factory, n_trials=15, **options)
    study = optuna.load_study(study_name=name, storage=storage)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 15
    assert states[8] == TrialState.FAIL  # the stale trial
    assert [t.datetime_start for t in study.trials[:8]] == [t.datetime_start for t in first]
    assert [t.params for t in study.trials[:8]] == [t.params for t in first]
    assert len(lines) == 4 and all("(7 run now)" in line for line in lines)
    assert result.sampler("tpe").best_at[15].n == 2

    # Everything finished: nothing runs, the summary is rewritten from the storage alone.
    (in_tmp / "out" / "summary.md").unlink()
    lines.clear()
    again = compare(quadratic_factory, n_trials=15, **options)
    assert lines == ["4 of 4 studies already done, not run again"]
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == 16
    assert (in_tmp / "out" / "summary.md").read_text() == result.summary_md.read_text()
    assert again.table() == result.table()


def test_a_study_that_stops_on_an_error_is_reported_and_resumed(in_tmp: Path) -> None:
    options: dict[str, Any] = dict(
        name="quadratic",
        samplers=("random",),
        seeds=1,
        n_trials=10,
        storage="journal:j.log",
        out="out",
        n_jobs=1,
        direction="minimize",
        progress=False,
        echo=lambda line: None,
    )
    FAIL_AT.add(4)
    try:
        result = compare(failing_factory, **options)
    finally:
        FAIL_AT.clear()
    assert len(result.errors) == 1 and "simulated crash at trial 4" in result.errors[0]
    assert result.studies[0].n_complete == 4
    assert "## Incomplete" in result.summary_md.read_text()

    result = compare(failing_factory, **options)
    assert not result.errors
    study = _load("compare-quadratic-random-seed0", "journal:j.log")
    assert len(_complete_values(study)) == 10
    assert result.studies[0].best_so_far[:4] == tuple(
        np.minimum.accumulate(_complete_values(study)[:4])
    )


def test_custom_objective_from_python_in_worker_processes(in_tmp: Path) -> None:
    result = compare(
        quadratic_factory,
        samplers=("random", "tpe"),
        seeds=2,
        n_trials=12,
        out="custom",
        storage="sqlite:///custom.db",  # several processes write to one SQLite file
        direction="minimize",
        threshold=1.0,
        n_jobs=2,
        progress=False,
        echo=lambda line: None,
    )
    assert result.name == "quadratic_factory"
    for stats in result.studies:
        assert stats.n_complete == 12
        assert list(stats.best_so_far) == sorted(stats.best_so_far, reverse=True)
    summary = _read_csv(result.summary_csv)
    assert summary["tpe"]["rescored_best_median"] == ""
    assert float(summary["tpe"]["best_at_12_max"]) == max(
        s.best_so_far[-1] for s in result.studies if s.sampler == "tpe"
    )
    text = result.summary_md.read_text()
    assert "trials to 1" in text and "re-scored" not in text
    assert "optuna-dashboard sqlite:///custom.db" in text
    _assert_png(result.plot)  # type: ignore[arg-type]


@pytest.fixture
def llm_server() -> Iterator[StubLLMServer]:
    with StubLLMServer(responder=random_point_responder(1)) as server:
        yield server


def test_cli_compares_the_llm_through_the_openai_sdk(in_tmp: Path, llm_server, capsys) -> None:
    argv = [
        "compare",
        "--samplers",
        "random,llm",
        "--model",
        "stub-model",
        "--base-url",
        llm_server.openai_base_url,
        "--seeds",
        "2",
        "--n-trials",
        "8",
        "--n-startup-trials",
        "3",
        "--n-eval-episodes",
        "2",
        "--rescore-episodes",
        "5",
        "--n-jobs",
        "2",
        "--out",
        "llm",
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| llm-stub-model |" in out
    assert "wrote llm/best_so_far.png" in out
    assert "optuna-dashboard llm/compare.log" in out
    assert len(llm_server.requests) == 2 * (8 - 3)
    summary = _read_csv(in_tmp / "llm" / "summary.csv")
    row = summary["llm-stub-model"]
    assert float(row["llm_calls_median"]) == 5
    assert float(row["llm_fallbacks_max"]) == 0
    assert float(row["llm_tokens_min"]) > 0
    assert row["threshold"] == "90.0"
    text = (in_tmp / "llm" / "summary.md").read_text()
    assert "## LLM cost per study" in text
    study = _load(f"compare-{MC}-llm-stub-model-seed1", "journal:llm/compare.log")
    assert study.user_attrs["model"] == "stub-model"
    assert sum("llm_model" in t.user_attrs for t in study.trials) == 5
    # The same command again: nothing to do, no LLM call.
    assert main(argv) == 0
    assert "4 of 4 studies already done" in capsys.readouterr().out
    assert len(llm_server.requests) == 10


def test_unpicklable_factory_needs_n_jobs_1(in_tmp: Path) -> None:
    def nested(seed: int):
        return quadratic_factory(seed)

    with pytest.raises(ValueError, match="objective_factory must be picklable"):
        compare(nested, name="q", samplers=("random",), seeds=2, n_trials=3, n_jobs=2)
    result = compare(
        nested, name="q", samplers=("random",), seeds=2, n_trials=3, n_jobs=1, progress=False
    )
    assert [s.n_complete for s in result.studies] == [3, 3]
    assert result.storage == "journal:compare/compare.log"  # the default, in out


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"samplers": ("nope",)}, "samplers must be among"),
        ({"samplers": "tpe"}, "samplers must be a non-empty sequence"),
        ({"samplers": ("tpe", "tpe")}, "must not repeat"),
        ({"seeds": 0}, "seeds must be positive"),
        ({"seeds": [1, 1]}, "distinct non-negative"),
        ({"n_trials": 0}, "n_trials must be a positive integer"),
        ({"n_jobs": 0}, "n_jobs must be a positive integer"),
        ({"direction": "up"}, "direction must be"),
        ({"threshold": math.nan}, "threshold must be a finite number"),
        ({"storage": "sqlite:///:memory:"}, "in-memory SQLite"),
        ({"storage": "nonsense"}, "is not a storage URL"),
        ({"name": "two words"}, "name must be"),
    ],
)
def test_bad_arguments_name_the_argument(in_tmp: Path, options, message) -> None:
    settings: dict[str, Any] = {"name": "q", "samplers": ("random",), "n_trials": 2}
    settings.update(options)
    with pytest.raises(ValueError, match=message):
        compare(quadratic_factory, **settings)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--samplers", "tpe", "--model", "gpt-4o"], "applies to the llm and llm-control"),
        (["--samplers", "llm", "--model", "gpt-4o"], "OPENAI_API_KEY"),
        (["--env", "CartPole-v1"], "Box"),
        (["--seeds", "a,b"], "--seeds must be a count"),
    ],
)
def test_cli_errors_are_clear(in_tmp: Path, capsys, extra, message) -> None:
    argv = ["compare", "--samplers", "random", "--n-trials", "2", "--no-progress", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_spread_marks_seeds_that_never_reached_the_threshold() -> None:
    spread = Spread.of([12, math.inf, 30, math.inf, 7], method="higher")
    assert spread.median == 30 and spread.max == math.inf
    assert spread.format(0, above=100) == "30 [12, >100]"
    assert Spread.of([math.inf, math.inf]).format(0, above=50) == ">50"
    assert Spread.of([None, math.nan]).format() == "–"


# --------------------------------------------------------------------------- hardening


def test_a_failed_study_is_reported_as_failed_not_as_never_reaching_the_threshold(
    in_tmp: Path,
) -> None:
    """Seed 0 crashes at trial 4 below the threshold: it is failed, and left out of the trials to
    the threshold; seed 1 runs all its trials without reaching it: "never reached"."""
    options: dict[str, Any] = dict(
        name="quadratic",
        samplers=("random",),
        seeds=2,
        n_trials=10,
        storage="journal:j.log",
        out="out",
        n_jobs=1,
        direction="minimize",
        threshold=-1.0,  # a square is never below -1: no seed reaches it
        progress=False,
        echo=lambda line: None,
    )
    result = compare(seed0_crashes_at_trial_4, **options)
    failed, finished = result.studies
    assert failed.status == "failed" and "simulated crash at trial 4" in (failed.error or "")
    assert finished.status == "complete" and finished.trials_to_threshold is None
    row = result.sampler("random")
    assert row.failed == 1 and row.unfinished == 1 and row.reached == 0
    assert row.trials_to_threshold is not None and row.trials_to_threshold.n == 1  # seed 1 only
    summary = _read_csv(result.summary_csv)["random"]
    assert summary["seeds_failed"] == "1" and summary["seeds_unfinished"] == "1"
    assert summary["trials_to_threshold_median"] == "inf"
    with result.studies_csv.open(newline="", encoding="utf-8") as f:
        studies = {int(r["seed"]): r for r in csv.DictReader(f)}
    assert studies[0]["status"] == "failed" and studies[0]["trials_to_threshold"] == ""
    assert "simulated crash" in studies[0]["error"]
    assert studies[1]["status"] == "complete" and studies[1]["trials_to_threshold"] == "inf"
    text = result.summary_md.read_text()
    assert "| 0/2 (1 failed) |" in text
    assert "compare-quadratic-random-seed0: **failed** after 4 of 10 trials" in text


def test_compare_help_names_the_storage_it_uses(in_tmp: Path, capsys) -> None:
    from optuna_llm_sampler.app._compare import default_storage

    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {default_storage('OUT')}, in the --out folder)" in help_text
    assert "sqlite:///OUT" not in help_text
    result = compare(quadratic_factory, name="q", samplers=("random",), seeds=1, n_trials=2,
                     out="elsewhere", progress=False, echo=lambda line: None)  # fmt: skip
    assert result.storage == default_storage("elsewhere") == "journal:elsewhere/compare.log"
    assert (in_tmp / "elsewhere" / "compare.log").is_file()


def test_the_compare_storage_shows_no_password(in_tmp: Path) -> None:
    from optuna_llm_sampler.app._compare_worker import dashboard_command

    url = "postgresql+psycopg2://me:hunter2@db/x"
    assert dashboard_command(url) == "optuna-dashboard postgresql+psycopg2://me:***@db/x"
    with pytest.raises(ValueError) as error:
        compare(quadratic_factory, name="q", samplers=("random",), storage=url, n_trials=2)
    assert "hunter2" not in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize("n_jobs", ["1", "2"])
def test_ctrl_c_during_compare_is_one_line_and_stops_every_worker(
    in_tmp: Path, n_jobs: str
) -> None:
    """In this process or in worker processes (each gets the terminal's SIGINT too): one line,
    no traceback of any process, no worker left running; the same command resumes."""
    from tests.app._interrupt import complete_trials
    from tests.app._interrupt import interrupt_when

    args = ["compare", "--samplers", "random,tpe", "--seeds", "1", "--n-trials", "100000"]
    args += ["--n-eval-episodes", "500", "--n-jobs", n_jobs, "--no-progress", "--no-plot"]
    url = "journal:compare/compare.log"

    def ready() -> bool:
        counts = complete_trials(url)
        return len(counts) == 2 and (min(counts) if n_jobs == "2" else max(counts)) >= 2

    code, err = interrupt_when(args, ready, cwd=in_tmp)
    lines = [line for line in err.splitlines() if not line.startswith("[I ")]
    assert code == 130, err
    assert lines == ["interrupted; finished trials are saved and the same command resumes"], err
    storage = open_storage(url)
    for summary in optuna.get_all_study_summaries(storage):
        trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
        assert all(t.state.is_finished() for t in trials[:-1])  # the last may be RUNNING


def interrupted_in_optunas_handling(seed: int):
    """An objective whose trial ends as Ctrl-C inside Optuna's result handling surfaces (an
    error raised while the KeyboardInterrupt is handled)."""

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise UnboundLocalError("updated_state") from None  # __context__ stays set

    return objective


def test_an_interrupt_in_one_study_stops_the_comparison_not_just_that_study(in_tmp: Path) -> None:
    """Not reported as that study's error while the next study runs on (n_jobs=1)."""
    ran: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        compare(
            interrupted_in_optunas_handling,
            name="q",
            samplers=("random", "tpe"),
            seeds=1,
            n_trials=3,
            n_jobs=1,
            progress=False,
            echo=ran.append,
        )
    assert ran == []  # no study reported as finished or failed
