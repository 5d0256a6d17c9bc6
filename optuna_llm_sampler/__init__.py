"""optuna-llm-sampler: an Optuna sampler that asks a large language model for the next trial.

Example:
    .. code-block:: python

        import optuna
        from optuna_llm_sampler import LLMSampler

        study = optuna.create_study(direction="maximize", sampler=LLMSampler(model="gpt-4o"))
"""

from optuna_llm_sampler._parse import build_json_schema
from optuna_llm_sampler._parse import parse_answer
from optuna_llm_sampler._records import get_llm_record
from optuna_llm_sampler._records import llm_usage
from optuna_llm_sampler._records import LLMRecord
from optuna_llm_sampler._records import LLMUsage
from optuna_llm_sampler._sampler import LLMSampler
from optuna_llm_sampler.providers import Completion
from optuna_llm_sampler.providers import create_client
from optuna_llm_sampler.providers import GeminiClient
from optuna_llm_sampler.providers import LlamaCppClient
from optuna_llm_sampler.providers import LLMClient
from optuna_llm_sampler.providers import Message
from optuna_llm_sampler.providers import OpenAIClient
from optuna_llm_sampler.providers import ProviderConfigError
from optuna_llm_sampler.providers import ProviderError
from optuna_llm_sampler.providers import ProviderUnavailableError
from optuna_llm_sampler.providers import ResponseCache
from optuna_llm_sampler.providers import ScriptedClient


__version__ = "0.1.0"

__all__ = [
    "Completion",
    "GeminiClient",
    "LLMClient",
    "LlamaCppClient",
    "LLMRecord",
    "LLMSampler",
    "LLMUsage",
    "Message",
    "OpenAIClient",
    "ProviderConfigError",
    "ProviderError",
    "ProviderUnavailableError",
    "ResponseCache",
    "ScriptedClient",
    "build_json_schema",
    "create_client",
    "get_llm_record",
    "llm_usage",
    "parse_answer",
]
