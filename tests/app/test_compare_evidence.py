"""The evidence a comparison gives: ``llm-control`` (the LLM's set-up without the model), the
same seeds for every sampler, the model on the first ``llm_seeds``, the paired section, and
seed ``s`` meaning the same startup points and episodes in ``run`` and ``compare``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
import subprocess
import sys

import numpy as np
import optuna
import pytest

from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler import PRESETS
from optuna_llm_sampler import RandomProposer
from optuna_llm_sampler._options import preset_proposal
from optuna_llm_sampler.app import compare
from optuna_llm_sampler.app import LinearPolicyFactory
from optuna_llm_sampler.app import LinearPolicyRescore
from optuna_llm_sampler.app._compare import paired_comparisons
from optuna_llm_sampler.app._compare_stats import bootstrap_median_interval
from optuna_llm_sampler.app._compare_stats import signed_rank_p_value
from optuna_llm_sampler.app._llm_options import sampler_options
from optuna_llm_sampler.app._named_samplers import CONTROL
from optuna_llm_sampler.app._named_samplers import make_sampler
from optuna_llm_sampler.app._storage import open_storage
from optuna_llm_sampler.app.cli import main
from optuna_llm_sampler.providers import ScriptedClient
from optuna_llm_sampler.rl import MOUNTAINCAR


REPO = Path(__file__).resolve().parents[2]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _params(name: str, url: str, n: int) -> list[tuple[dict, float | None]]:
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    return [(t.params, t.value) for t in sorted(study.trials, key=lambda t: t.number)[:n]]


@pytest.mark.parametrize(
    ("model", "base_url", "preset", "local"),
    [
        ("local", None, "guided", True),
        ("gpt-4o", None, "tutorial", False),
        ("my-model", "http://127.0.0.1:1/v1", "tutorial", False),
    ],
)
def test_the_control_takes_the_llm_set_up_with_only_the_model_replaced(
    model, base_url, preset, local
):
    options = sampler_options(env=MOUNTAINCAR, model=model, budget=60)
    if base_url:
        options["base_url"] = base_url
    options["provider_options"] = {"timeout": 5}
    control = make_sampler(CONTROL, seed=4, n_startup_trials=7, llm_options=options)
    client = control.client
    assert isinstance(client, RandomProposer)
    assert (client.seed, client.runs_locally, client.search_std) == (4, local, 1.0)
    # preset "auto" resolves for the control as for the model it stands in for
    assert control.proposal == preset_proposal("auto", runs_locally=local)
    assert control.proposal == PRESETS[preset].proposal
    assert control._prompt == options["prompt"]
    assert control._n_startup_trials == 7


def test_the_control_follows_the_prompt_step_and_every_explicit_option():
    options = sampler_options(
        env=MOUNTAINCAR,
        model="gpt-4o",
        guidance="on",
        given={"prompt": {"search_std": 0.5}, "proposal": {"n_candidates": 5}},
    )
    control = make_sampler(CONTROL, seed=0, llm_options=options)
    assert control.client.search_std == 0.5
    assert control.proposal == options["proposal"] and control.proposal.n_candidates == 5
    assert control._prompt.task_description == options["prompt"].task_description is not None


def test_paired_comparisons_put_the_control_first():
    names = ["random", "llm", "gp", CONTROL]
    labels = ["random", "llm-local", "gp", CONTROL]
    assert paired_comparisons(labels, names) == [
        ("llm-local", CONTROL),
        ("llm-local", "random"),
        ("llm-local", "gp"),
        (CONTROL, "random"),
        (CONTROL, "gp"),
    ]
    assert paired_comparisons(["tpe", "random"], ["tpe", "random"]) == []


def test_an_llm_with_the_model_control_cannot_sit_beside_llm_control(in_tmp):
    with pytest.raises(ValueError, match="distinct labels"):
        compare(
            LinearPolicyFactory(MOUNTAINCAR),
            samplers=("llm", CONTROL),
            llm_options={"model": "control"},
            n_trials=2,
        )


def test_llm_control_and_random_share_seeds_and_give_a_paired_section(in_tmp, capsys):
    argv = [
        "compare",
        "--samplers",
        "llm-control,random",
        "--model",
        "local",
        "--seeds",
        "6",
        "--n-trials",
        "12",
        "--n-startup-trials",
        "4",
        "--n-eval-episodes",
        "2",
        "--rescore-episodes",
        "3",
        "--max-steps",
        "200",
        "--threshold",
        "-10",
        "--n-jobs",
        "2",
        "--out",
        "ev",
        "--no-progress",
        "--no-plot",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Paired, seed by seed" in out and f"| {CONTROL} | random | best re-scored | 6 |" in out
    studies = _rows(in_tmp / "ev" / "studies.csv")
    by = {(r["sampler"], int(r["seed"])): r for r in studies}
    assert len(by) == 12
    url = "journal:ev/compare.log"
    for seed in range(6):
        # the same startup points (and so values: the same episodes) for both samplers
        control = _params(f"compare-{MOUNTAINCAR}-{CONTROL}-seed{seed}", url, 4)
        random = _params(f"compare-{MOUNTAINCAR}-random-seed{seed}", url, 4)
        assert control == random
    diffs = [
        float(by[(CONTROL, s)]["rescored_best"]) - float(by[("random", s)]["rescored_best"])
        for s in range(6)
    ]
    paired = {
        (r["sampler"], r["other"], r["metric"]): r for r in _rows(in_tmp / "ev" / "paired.csv")
    }
    row = paired[(CONTROL, "random", "rescored_best")]
    assert float(row["median_difference"]) == pytest.approx(np.median(diffs))
    assert (float(row["ci_low"]), float(row["ci_high"])) == pytest.approx(
        bootstrap_median_interval(diffs)
    )
    p = signed_rank_p_value(diffs)
    assert (row["p_value"] == "") if np.isnan(p) else float(row["p_value"]) == pytest.approx(p)
    assert (CONTROL, "random", "trials_to_threshold") in paired
    summary = {r["sampler"]: r for r in _rows(in_tmp / "ev" / "summary.csv")}
    assert summary[CONTROL]["n_seeds"] == "6"
    assert summary[CONTROL]["rescored_best_ci_low"] != ""
    text = (in_tmp / "ev" / "summary.md").read_text()
    assert "## Paired: each sampler against the others" in text
    assert "seeds < 50" in text and "Code and versions: optuna-llm-sampler" in text
    # a summary computed again from the storage prints the same numbers (fixed bootstrap seed)
    first = (in_tmp / "ev" / "paired.csv").read_text()
    assert main(argv) == 0
    assert (in_tmp / "ev" / "paired.csv").read_text() == first


def _random_change(messages, schema):
    return RandomProposer(seed=len(messages[-1].content)).complete(messages, schema=schema).text


def test_the_model_runs_the_first_llm_seeds_and_is_paired_on_them(in_tmp):
    client = ScriptedClient(respond=_random_change, supports_schema=True, model="scripted")
    result = compare(
        LinearPolicyFactory(MOUNTAINCAR, n_eval_episodes=1, max_steps=100),
        samplers=("llm", CONTROL, "random"),
        seeds=[3, 1, 4, 5],
        llm_seeds=2,
        n_trials=6,
        n_startup_trials=3,
        llm_options={"model": client},
        threshold=-5,
        fail_below=-1,
        rescore=LinearPolicyRescore(MOUNTAINCAR, n_episodes=2, max_steps=100),
        n_jobs=1,
        out="sub",
        plot=False,
        progress=False,
        echo=lambda line: None,
    )
    assert not result.errors
    assert result.sampler("llm-scripted").seeds == (3, 1)
    assert result.sampler(CONTROL).seeds == result.sampler("random").seeds == (3, 1, 4, 5)
    pairs = {(p.sampler, p.other, p.metric): p for p in result.paired}
    assert pairs[("llm-scripted", CONTROL, "rescored_best")].seeds == (1, 3)
    assert pairs[(CONTROL, "random", "rescored_best")].seeds == (1, 3, 4, 5)
    assert result.sampler(CONTROL).below_fail is not None
    assert "| llm-scripted | llm-control |" in (result.paired_table() or "")


def test_llm_control_needs_no_model_installed(in_tmp):
    """llama_cpp made unimportable: ``compare --samplers llm-control --model local`` runs."""
    code = (
        "import sys; sys.modules['llama_cpp'] = None\n"
        "from optuna_llm_sampler.app.cli import main\n"
        "code = main(['compare', '--samplers', 'llm-control', '--model', 'local', '--seeds', '1',"
        " '--n-trials', '4', '--n-startup-trials', '2', '--n-eval-episodes', '1',"
        " '--rescore-episodes', '1', '--max-steps', '50', '--n-jobs', '1', '--no-progress',"
        " '--no-plot'])\n"
        "assert 'llama_cpp' not in sys.modules or sys.modules['llama_cpp'] is None\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=in_tmp,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(in_tmp)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| llm-control | 1 |" in done.stdout


def test_run_starts_from_the_points_and_episodes_of_compare_for_a_seed(in_tmp, capsys):
    seed = 2
    common = ["--n-eval-episodes", "2", "--max-steps", "100", "--no-progress"]
    assert (
        main(
            [
                "compare",
                "--samplers",
                "random,llm-control",
                "--model",
                "gpt-4o",
                "--seeds",
                str(seed + 1),
                "--n-trials",
                "5",
                "--n-startup-trials",
                "3",
                "--rescore-episodes",
                "1",
                "--n-jobs",
                "1",
                "--no-plot",
                "--out",
                "cmp",
                *common,
            ]
        )
        == 0
    )
    assert (
        main(["run", "--sampler", "random", "--seed", str(seed), "--n-trials", "5", *common]) == 0
    )
    assert (
        main(
            [
                "run",
                "--model",
                "control",
                "--seed",
                str(seed),
                "--n-trials",
                "5",
                "--n-startup-trials",
                "3",
                *common,
            ]
        )
        == 0
    )
    capsys.readouterr()
    url = "journal:cmp/compare.log"
    compared = _params(f"compare-{MOUNTAINCAR}-random-seed{seed}", url, 5)
    run_random = _params(f"{MOUNTAINCAR}-random-seed{seed}", "sqlite:///optuna_llm_sampler.db", 5)
    assert run_random == compared  # the same points and the same values: the same episodes
    run_llm = _params(
        f"{MOUNTAINCAR}-llm-control-seed{seed}", "sqlite:///optuna_llm_sampler.db", 3
    )
    assert run_llm == compared[:3]
    assert _params(f"compare-{MOUNTAINCAR}-{CONTROL}-seed{seed}", url, 3) == compared[:3]
    json.dumps(compared)  # plain values


def test_with_a_base_sampler_the_llm_waits_for_the_bases_own_startup_not_twenty(in_tmp):
    # No --n-startup-trials: LLMSampler's default, the base's own startup (10 for random).
    argv = [
        "compare",
        "--samplers",
        CONTROL,
        "--model",
        "local",
        "--base-sampler",
        "random",
        "--llm-share",
        "1",
        "--seeds",
        "1",
        "--n-trials",
        "14",
        "--n-eval-episodes",
        "1",
        "--rescore-episodes",
        "1",
        "--max-steps",
        "50",
        "--n-jobs",
        "1",
        "--out",
        "base",
        "--no-progress",
        "--no-plot",
    ]
    assert main(argv) == 0
    study = optuna.load_study(
        study_name=f"compare-{MOUNTAINCAR}-{CONTROL}-seed0",
        storage=open_storage("journal:base/compare.log"),
    )
    asked = [t.number for t in study.trials if get_llm_record(t) is not None]
    assert asked and min(asked) == 10
