"""Samplers by name, for the ``run`` and ``compare`` commands."""

from __future__ import annotations

from collections.abc import Mapping
import os
from typing import Any

from optuna.samplers import BaseSampler

from optuna_llm_sampler._advice import BASE_SAMPLER_NAMES
from optuna_llm_sampler._advice import make_base_sampler
from optuna_llm_sampler._options import PRESETS
from optuna_llm_sampler.app._install import install_hint
from optuna_llm_sampler.app._install import is_missing


SAMPLER_NAMES = ("llm", "tpe", "cmaes", "gp", "random", "qmc")
#: The ``llm`` sampler's no-LLM control: the same set-up with the model replaced by
#: :class:`~optuna_llm_sampler.providers.RandomProposer` (a ``compare`` sampler).
CONTROL = "llm-control"
#: The keyword arguments that configure the model itself, which the control does not take.
_MODEL_OPTIONS = ("model", "base_url", "api_key", "provider_options")

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


def startup_sampler(seed: int | None) -> BaseSampler:
    """Random search as seed ``seed`` means it everywhere: the ``random`` sampler and the LLM
    samplers' startup trials and fallbacks, in ``run``, ``compare`` and the benchmarks.

    Trial ``k``'s point depends on ``(seed, k)`` only
    (:class:`~optuna_llm_sampler._claims.PerTrialRandomSampler`, the library's default
    independent sampler), so the first 20 trials of ``random`` and of ``llm`` with seed ``s`` are
    the same points, however many workers share the study.

    Example:
        >>> type(startup_sampler(0)).__name__
        'PerTrialRandomSampler'
    """
    from optuna_llm_sampler._claims import PerTrialRandomSampler

    return PerTrialRandomSampler(seed=seed)


def model_runs_locally(model: Any, base_url: str | None = None) -> bool:
    """Whether ``model`` (a model string or a client) runs in this process, as
    ``LLMSampler(preset="auto")`` asks its client.

    Example:
        >>> model_runs_locally("local"), model_runs_locally("gpt-4o")
        (True, False)
    """
    if isinstance(model, str):
        from optuna_llm_sampler.providers import parse_model_string

        try:
            return parse_model_string(model, base_url=base_url)[0] == "local"
        except ValueError:
            return False
    return bool(getattr(model, "runs_locally", False))


def control_options(llm_options: dict[str, Any] | None, *, seed: int | None) -> dict[str, Any]:
    """The ``llm`` sampler's options with the model replaced by its no-LLM control.

    Every option but the model's own (``model``, ``base_url``, ``api_key``,
    ``provider_options``) is kept, so preset, prompt, history, proposal and any other option
    are exactly the ``llm``'s. The control reports the model's ``runs_locally``, so
    ``preset="auto"`` resolves as it does for the model, and changes by the prompt's
    ``search_std``.

    Example:
        >>> options = control_options({"model": "local", "preset": "auto"}, seed=3)
        >>> options["model"]
        RandomProposer(seed=3, search_std=1.0, decimals=1, runs_locally=True)
    """
    from optuna_llm_sampler._options import PromptOptions
    from optuna_llm_sampler.providers import RandomProposer

    given = dict(llm_options or {})
    model = given.get("model") or default_model()
    local = model_runs_locally(model, given.get("base_url"))
    prompt = given.get("prompt")
    search_std = prompt.search_std if isinstance(prompt, PromptOptions) else None
    options = {k: v for k, v in given.items() if k not in _MODEL_OPTIONS}
    options["model"] = RandomProposer(
        seed=seed, search_std=1.0 if search_std is None else search_std, runs_locally=local
    )
    return options


def llm_base_sampler(llm_options: Mapping[str, Any]) -> Any:
    """The base sampler in control of an ``LLMSampler`` with these options (its
    ``base_sampler``, else its preset's), or ``None`` when random search only fills in.

    Example:
        >>> llm_base_sampler({"preset": "advised"}), llm_base_sampler({"preset": "guided"})
        ('gp', None)
    """
    base = llm_options.get("base_sampler")
    if base is None:
        preset = PRESETS.get(str(llm_options.get("preset", "auto")))
        base = None if preset is None else preset.base_sampler
    return base


def make_sampler(
    name: str,
    *,
    seed: int | None,
    n_startup_trials: int | None = None,
    llm_options: dict[str, Any] | None = None,
) -> BaseSampler:
    """A sampler by name: ``llm``, its control ``llm-control`` (:func:`control_options`), or
    one of Optuna's (``tpe``, ``cmaes``, ``gp``, ``random``, ``qmc``).

    Optuna's samplers keep their own defaults, as a user would get them, but for ``random``,
    which is :func:`startup_sampler` (random search, a stream per trial); ``n_startup_trials``
    applies to the LLM samplers only, whose startup trials are :func:`startup_sampler`'s
    (``None``: 20, or the base sampler's own startup when one is in control).
    ``llm_options`` are keyword arguments of :class:`~optuna_llm_sampler.LLMSampler`
    (``model``, ``prompt``, ...).

    Raises:
        ValueError: Unknown name (the message lists the known ones), or a sampler whose
            optional modules are missing (the message says how to install them).
    """
    import optuna

    check_sampler_available(name)

    if name in ("llm", CONTROL):
        from optuna_llm_sampler._sampler import LLMSampler

        options = dict(llm_options or {})
        options.setdefault("model", default_model())
        if name == CONTROL:
            options = control_options(options, seed=seed)
        base = llm_base_sampler(options)
        if isinstance(base, str):
            check_sampler_available(base)  # the install hint before the first trial, not at it
        if base is None:
            options.setdefault("independent_sampler", startup_sampler(seed))
        return LLMSampler(n_startup_trials=n_startup_trials, seed=seed, **options)
    if name == "random":
        return startup_sampler(seed)
    if name in BASE_SAMPLER_NAMES:
        return make_base_sampler(name, seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, scramble=True)
    raise ValueError(
        f"sampler must be one of {', '.join((*SAMPLER_NAMES, CONTROL))}, got {name!r}."
    )
