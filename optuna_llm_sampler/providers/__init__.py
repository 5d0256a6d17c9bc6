"""LLM providers behind one interface, :class:`LLMClient`."""

from optuna_llm_sampler.providers._base import Completion
from optuna_llm_sampler.providers._base import LLMClient
from optuna_llm_sampler.providers._base import Message
from optuna_llm_sampler.providers._base import ProviderConfigError
from optuna_llm_sampler.providers._base import ProviderError
from optuna_llm_sampler.providers._base import ProviderUnavailableError
from optuna_llm_sampler.providers._cache import ResponseCache
from optuna_llm_sampler.providers._control import RandomProposer
from optuna_llm_sampler.providers._gemini import GeminiClient
from optuna_llm_sampler.providers._keys import redact_url
from optuna_llm_sampler.providers._llamacpp import LlamaCppClient
from optuna_llm_sampler.providers._openai import OpenAIClient
from optuna_llm_sampler.providers._registry import create_client
from optuna_llm_sampler.providers._registry import parse_model_string
from optuna_llm_sampler.providers._scripted import ScriptedClient


__all__ = [
    "Completion",
    "GeminiClient",
    "LLMClient",
    "LlamaCppClient",
    "Message",
    "OpenAIClient",
    "ProviderConfigError",
    "ProviderError",
    "ProviderUnavailableError",
    "RandomProposer",
    "ResponseCache",
    "ScriptedClient",
    "create_client",
    "parse_model_string",
    "redact_url",
]
