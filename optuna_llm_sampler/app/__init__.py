"""The application on top of the library: the ``optuna-llm-sampler`` command and what it runs.

``run`` (the ProPS tutorial's loop as one study), ``compare`` (samplers over seeds on one
objective), ``plot`` (an episode's figures) and ``dashboard`` (optuna-dashboard with the run's
artifacts). Each is a client of :class:`~optuna_llm_sampler.LLMSampler`: what it runs is one
``LLMSampler(...)`` call, which ``run`` prints.

Example:
    .. code-block:: python

        from optuna_llm_sampler.app import compare
        from optuna_llm_sampler.app import LinearPolicyFactory

        result = compare(LinearPolicyFactory("MountainCarContinuous-v0"), samplers=("tpe", "gp"))
        print(result.table())
"""

from optuna_llm_sampler.app._compare import compare
from optuna_llm_sampler.app._compare import ComparisonResult
from optuna_llm_sampler.app._compare import LinearPolicyFactory
from optuna_llm_sampler.app._compare import LinearPolicyRescore
from optuna_llm_sampler.app._plots import plot_episode
from optuna_llm_sampler.app._plots import save_episode_gif
from optuna_llm_sampler.app._run import run_study
from optuna_llm_sampler.app._run_config import RunConfig
from optuna_llm_sampler.app._run_config import RunSummary
from optuna_llm_sampler.app._run_note import save_study_figures


__all__ = [
    "ComparisonResult",
    "LinearPolicyFactory",
    "LinearPolicyRescore",
    "RunConfig",
    "RunSummary",
    "compare",
    "plot_episode",
    "run_study",
    "save_episode_gif",
    "save_study_figures",
]
