"""Episode figure and GIF are written headless, as real image files."""

from __future__ import annotations

import pytest

from optuna_llm_sampler.app import plot_episode
from optuna_llm_sampler.app import save_episode_gif
from optuna_llm_sampler.rl import rollout_episode


pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_plot_episode_from_weights(tmp_path):
    path = plot_episode([[0.0], [7.0]], tmp_path / "episode.png", seed=1)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    with Image.open(path) as image:
        assert image.size[0] > 300 and image.size[1] > 300


def test_plot_episode_from_rollout_of_another_env(tmp_path):
    rollout = rollout_episode([[0.5], [-0.2], [-0.8]], "Pendulum-v1", seed=0, max_steps=50)
    path = plot_episode(rollout, tmp_path / "pendulum.png", title="Pendulum")
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_plot_episode_does_not_touch_pyplot(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    plot_episode([[0.0], [7.0]], tmp_path / "episode.png", max_steps=20)
    assert matplotlib.get_backend() == backend


def test_save_episode_gif_has_many_frames(tmp_path):
    pytest.importorskip("pygame")
    path = save_episode_gif([[0.0], [7.0]], tmp_path / "episode.gif", seed=0, max_steps=21)
    assert path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "GIF"
        assert image.n_frames > 1
        assert image.size == (600, 400)


def test_save_episode_gif_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="frame_skip must be a positive integer"):
        save_episode_gif([[0.0], [7.0]], tmp_path / "x.gif", frame_skip=0)
    with pytest.raises(ValueError, match="fps must be a positive integer"):
        save_episode_gif([[0.0], [7.0]], tmp_path / "x.gif", fps=0)
