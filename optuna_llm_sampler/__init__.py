"""optuna-llm-sampler: an Optuna sampler that asks a large language model for the next trial.

Example:
    .. code-block:: python

        import optuna
        from optuna_llm_sampler import LLMSampler

        study = optuna.create_study(direction="maximize", sampler=LLMSampler(model="gpt-4o"))

Provider clients live in :mod:`optuna_llm_sampler.providers`, the reinforcement-learning
objectives in :mod:`optuna_llm_sampler.rl`, the dashboard note in
:mod:`optuna_llm_sampler.integrations`, and the command line in :mod:`optuna_llm_sampler.app`.
"""

from optuna_llm_sampler._options import AbsolutePoints
from optuna_llm_sampler._options import HistoryOptions
from optuna_llm_sampler._options import PRESETS
from optuna_llm_sampler._options import PromptOptions
from optuna_llm_sampler._options import StepsFromBest
from optuna_llm_sampler._records import get_llm_record
from optuna_llm_sampler._records import llm_usage
from optuna_llm_sampler._records import LLMRecord
from optuna_llm_sampler._records import LLMUsage
from optuna_llm_sampler._sampler import LLMSampler
from optuna_llm_sampler.providers import Completion
from optuna_llm_sampler.providers import LLMClient
from optuna_llm_sampler.providers import Message
from optuna_llm_sampler.providers import ProviderConfigError
from optuna_llm_sampler.providers import ProviderError
from optuna_llm_sampler.providers import ProviderUnavailableError
from optuna_llm_sampler.providers import RandomProposer


__version__ = "0.1.0"

__all__ = [
    "AbsolutePoints",
    "Completion",
    "HistoryOptions",
    "LLMClient",
    "LLMRecord",
    "LLMSampler",
    "LLMUsage",
    "Message",
    "PRESETS",
    "PromptOptions",
    "ProviderConfigError",
    "ProviderError",
    "ProviderUnavailableError",
    "RandomProposer",
    "StepsFromBest",
    "get_llm_record",
    "llm_usage",
]
