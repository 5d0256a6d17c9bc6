"""Samplers by name, for the ``run`` and ``compare`` commands."""

from __future__ import annotations

import os
from typing import Any

from optuna.samplers import BaseSampler

from optuna_llm_sampler._advice import BASE_SAMPLER_NAMES
from optuna_llm_sampler._advice import make_base_sampler
from optuna_llm_sampler._options import PRESETS
from optuna_llm_sampler.app._install import install_hint
from optuna_llm_sampler.app._install import is_missing


SAMPLER_NAMES = ("llm", "tpe", "cmaes", "gp", "random", "qmc")

#: The optional modules each of Optuna's samplers imports when it samples (Optuna imports them
#: lazily, so without this check a missing one ends the study with a traceback at its first
#: trial), and how to install each. ``cmaes`` and ``scipy`` come with the ``samplers`` extra
#: (part of ``quickstart`` and ``all``); PyTorch is left to the user, whose machine decides which
#: build fits (the default one on PyPI is the multi-GB CUDA build).
SAMPLER_MODULES: dict[str, tuple[str, ...]] = {
    "cmaes": ("cmaes",),
    "qmc": ("scipy",),
    "gp": ("torch", "scipy"),
}
_MODULE_NAMES = {"cmaes": "cmaes", "scipy": "SciPy", "torch": "PyTorch"}
_MODULE_HINTS = {
    "cmaes": install_hint("samplers"),
    "scipy": install_hint("samplers"),
    "torch": "pip install torch --index-url https://download.pytorch.org/whl/cpu (the CPU build "
    "is enough)",
}


def default_model() -> str:
    """``gpt-4o`` (the tutorial's model) with ``OPENAI_API_KEY`` set, else the embedded model."""
    return "gpt-4o" if os.environ.get("OPENAI_API_KEY") else "local"


def check_sampler_available(name: str) -> None:
    """Refuse, before anything runs, a sampler whose optional modules are not installed.

    Example:
        >>> check_sampler_available("tpe")  # TPE needs nothing optional

    Raises:
        ValueError: A module the sampler needs is missing; the message says how to install it.
    """
    missing = [module for module in SAMPLER_MODULES.get(name, ()) if is_missing(module)]
    if missing:
        needs = " and ".join(_MODULE_NAMES[m] for m in missing)
        hints = " and ".join(dict.fromkeys(_MODULE_HINTS[m] for m in missing))
        raise ValueError(f"the {name} sampler needs {needs}, which is not installed: {hints}.")


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
        ValueError: Unknown name (the message lists the known ones), or a sampler whose
            optional modules are missing (the message says how to install them).
    """
    import optuna

    check_sampler_available(name)

    if name == "llm":
        from optuna_llm_sampler._sampler import LLMSampler

        options = dict(llm_options or {})
        options.setdefault("model", default_model())
        base = options.get("base_sampler")
        if base is None:
            preset = PRESETS.get(str(options.get("preset", "auto")))
            base = None if preset is None else preset.base_sampler
        if isinstance(base, str):
            check_sampler_available(base)  # the install hint before the first trial, not at it
        return LLMSampler(n_startup_trials=n_startup_trials, seed=seed, **options)
    if name in BASE_SAMPLER_NAMES:
        return make_base_sampler(name, seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, scramble=True)
    raise ValueError(f"sampler must be one of {', '.join(SAMPLER_NAMES)}, got {name!r}.")
