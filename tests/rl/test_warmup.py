"""ProPS warmup files: written, read back, and added to a study as completed trials."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from optuna_llm_sampler.rl import add_warmup_trials
from optuna_llm_sampler.rl import linear_policy_objective
from optuna_llm_sampler.rl import load_warmup_folder
from optuna_llm_sampler.rl import read_warmup_file
from optuna_llm_sampler.rl import rollout_episode
from optuna_llm_sampler.rl import write_warmup_file


WARMUP = {0: [-1.2, 0.3], 2: [0.1, 6.5], 10: [2.5, -3.0]}  # N -> (a, b)


@pytest.fixture
def warmup_dir(tmp_path):
    for n, w in WARMUP.items():
        rollouts = [rollout_episode(w, seed=s, max_steps=200) for s in (n, n + 1)]
        write_warmup_file(tmp_path / f"warmup_rollout_{n}.txt", np.reshape(w, (2, 1)), rollouts)
    (tmp_path / "notes.txt").write_text("not a warmup file\n")
    (tmp_path / "warmup_rollout_3.txt.bak").write_text("ignored\n")
    return tmp_path


def _mean_return(n):
    w = WARMUP[n]
    return np.mean([rollout_episode(w, seed=s, max_steps=200).total_return for s in (n, n + 1)])


def test_written_file_has_the_tutorial_layout(warmup_dir):
    lines = (warmup_dir / "warmup_rollout_2.txt").read_text().splitlines()
    assert lines[:3] == ["0.1", "6.5", "parameter ends"]
    assert lines[3] == "state | action | reward"
    assert lines[4].count("|") == 2
    assert sum(line.startswith("Total reward: ") for line in lines) == 2


def test_round_trip_sorted_by_number(warmup_dir):
    loaded = load_warmup_folder(warmup_dir)
    assert len(loaded) == 3
    for (weights, reward), n in zip(loaded, [0, 2, 10], strict=True):  # 10 after 2
        np.testing.assert_array_equal(weights, np.reshape(WARMUP[n], (2, 1)))
        assert reward == pytest.approx(_mean_return(n), abs=1e-12)


def test_add_warmup_trials(warmup_dir):
    study = optuna.create_study(direction="maximize")
    added = add_warmup_trials(study, warmup_dir)
    assert len(added) == len(study.trials) == 3
    for trial, n in zip(study.trials, [0, 2, 10], strict=True):
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert trial.params == {"a": WARMUP[n][0], "b": WARMUP[n][1]}
        assert trial.distributions["a"] == optuna.distributions.FloatDistribution(-7.0, 7.0)
        assert trial.value == pytest.approx(_mean_return(n), abs=1e-12)
        assert trial.user_attrs == {"warmup_file": f"warmup_rollout_{n}.txt"}
    # The objective's own trials share the search space with the warmup trials.
    study.sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=2)
    study.optimize(linear_policy_objective(seed=0, n_eval_episodes=2), n_trials=2)
    assert len(study.trials) == 5


def test_rows_of_several_weights_and_extra_lines(tmp_path):
    path = tmp_path / "warmup_rollout_0.txt"
    path.write_text(
        "Weights:\n-1.2, 0.3,\n\nparameter ends\n"
        "state | action | reward\n[-0.5  0. ] | [0.1] | -0.001\n"
        "Total reward: 10.0\nTotal reward: 20.5\nTotal reward: oops\n"
    )
    weights, reward = read_warmup_file(path)
    np.testing.assert_array_equal(weights, [[-1.2, 0.3]])
    assert reward == 15.25
    study = optuna.create_study(direction="maximize")
    add_warmup_trials(study, tmp_path)
    assert study.trials[0].params == {"a": -1.2, "b": 0.3}


def test_weight_outside_the_range_names_the_file(warmup_dir):
    (warmup_dir / "warmup_rollout_5.txt").write_text(
        "0.5\n9.5\nparameter ends\nTotal reward: 1.0\n"
    )
    study = optuna.create_study(direction="maximize")
    with pytest.raises(ValueError, match=r"warmup_rollout_5\.txt.*outside \[low, high\].*'b'"):
        add_warmup_trials(study, warmup_dir)
    assert study.trials == []  # checked before adding anything
    # A wider range accepts it.
    add_warmup_trials(study, warmup_dir, low=-10.0, high=10.0)
    assert len(study.trials) == 4


def test_tutorial_rollout_only_file_has_no_weights(tmp_path):
    # What the tutorial's random_warmup writes: rollout lines only.
    (tmp_path / "warmup_rollout_0.txt").write_text(
        "state | action | reward\n[-0.5] | [0.1] | -0.001\nTotal reward: -0.001\n"
    )
    with pytest.raises(ValueError, match=r"warmup_rollout_0\.txt.*no weight lines"):
        load_warmup_folder(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.0\n2.0\nparameter ends\n", "no 'Total reward"),
        ("1.0, 2.0\n3.0\nparameter ends\nTotal reward: 1\n", "different lengths"),
        ("1.0\nnan\nparameter ends\nTotal reward: 1\n", "non-finite"),
    ],
)
def test_malformed_files(tmp_path, text, message):
    (tmp_path / "warmup_rollout_1.txt").write_text(text)
    with pytest.raises(ValueError, match=message):
        load_warmup_folder(tmp_path)


def test_wrong_number_of_weights(tmp_path):
    text = "1.0\n2.0\n3.0\nparameter ends\nTotal reward: 1\n"
    (tmp_path / "warmup_rollout_1.txt").write_text(text)
    study = optuna.create_study(direction="maximize")
    with pytest.raises(ValueError, match=r"warmup_rollout_1\.txt.*3 weights.*2 names"):
        add_warmup_trials(study, tmp_path)
    add_warmup_trials(study, tmp_path, param_names=("a", "b", "c"))
    assert study.trials[0].params == {"a": 1.0, "b": 2.0, "c": 3.0}


def test_bad_folder_and_study(tmp_path):
    with pytest.raises(ValueError, match="folder must be an existing directory"):
        load_warmup_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="direction='maximize'"):
        add_warmup_trials(optuna.create_study(direction="minimize"), tmp_path)
