"""Samplers by name, for the ``run`` and ``compare`` commands."""

from __future__ import annotations

import os
from typing import Any

from optuna.samplers import BaseSampler


SAMPLER_NAMES = ("llm", "tpe", "cmaes", "gp", "random", "qmc")


def default_model() -> str:
    """``gpt-4o`` (the tutorial's model) with ``OPENAI_API_KEY`` set, else the embedded model."""
    return "gpt-4o" if os.environ.get("OPENAI_API_KEY") else "local"


def make_sampler(
    name: str,
    *,
    seed: int | None,
    n_startup_trials: int = 20,
    llm_options: dict[str, Any] | None = None,
) -> BaseSampler:
    """A sampler by name: ``llm`` or one of Optuna's (``tpe``, ``cmaes``, ``gp``, ``random``,
    ``qmc``).

    Optuna's samplers keep their own defaults, as a user would get them; ``n_startup_trials``
    applies to the LLM sampler only. ``llm_options`` are keyword arguments of
    :class:`~optuna_llm_sampler.LLMSampler` (``model``, ``search_std``, ...).

    Raises:
        ValueError: Unknown name; the message lists the known ones.
    """
    import optuna

    if name == "llm":
        from optuna_llm_sampler._sampler import LLMSampler

        options = dict(llm_options or {})
        options.setdefault("model", default_model())
        return LLMSampler(n_startup_trials=n_startup_trials, seed=seed, **options)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "gp":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ValueError(
                "the gp sampler needs PyTorch: pip install torch (the CPU build is enough)."
            ) from None
        return optuna.samplers.GPSampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, scramble=True)
    raise ValueError(f"sampler must be one of {', '.join(SAMPLER_NAMES)}, got {name!r}.")
