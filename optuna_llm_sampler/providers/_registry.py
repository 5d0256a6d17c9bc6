"""Model strings → clients: ``"gpt-4o"``, ``"openai:gpt-4o-mini"``, ``"gemini:gemini-2.0-flash"``,
``"local"``, ``"local:/path/model.gguf"``, and ``"control"`` (no model: the
:class:`RandomProposer` control)."""

from __future__ import annotations

from typing import Any

from optuna_llm_sampler.providers._base import LLMClient
from optuna_llm_sampler.providers._control import CONTROL_MODEL


_OPENAI_PREFIXES = ("gpt-", "gpt4", "chatgpt-", "o1", "o3", "o4", "ft:gpt-", "davinci", "text-")
_GEMINI_PREFIXES = ("gemini-", "gemma-", "models/gemini-")
PROVIDERS = ("openai", "gemini", "local")


def parse_model_string(model: str, *, base_url: str | None = None) -> tuple[str, str | None]:
    """Split a model string into ``(provider, model_name)``.

    Explicit ``"provider:name"`` wins; plain names are routed by prefix (``gpt-``, ``o1``,
    ``o3``, ``chatgpt-`` → OpenAI; ``gemini-`` → Gemini); ``"local"`` is the embedded model and a
    ``.gguf`` path a local model; ``"control"`` is the no-LLM control. Any other plain name goes to
    an OpenAI-compatible server when ``base_url`` is given. No allow-list: new model names work as
    they appear.

    Example:
        >>> parse_model_string("gpt-4o")
        ('openai', 'gpt-4o')
        >>> parse_model_string("local")
        ('local', None)
        >>> parse_model_string("qwen2.5:7b", base_url="http://127.0.0.1:11434/v1")
        ('openai', 'qwen2.5:7b')
    """
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"model must be a non-empty string or an LLMClient, got {model!r}.")
    model = model.strip()
    if model == "local":
        return "local", None
    if model == CONTROL_MODEL:
        return CONTROL_MODEL, None
    provider, sep, name = model.partition(":")
    if sep and provider.lower() in PROVIDERS + ("google",):
        provider = "gemini" if provider.lower() == "google" else provider.lower()
        if not name:
            if provider == "local":
                return "local", None
            raise ValueError(f"model {model!r} names no model after {provider!r}:.")
        return provider, name
    lowered = model.lower()
    if lowered.endswith(".gguf"):
        return "local", model
    if lowered.startswith(_OPENAI_PREFIXES):
        return "openai", model
    if lowered.startswith(_GEMINI_PREFIXES):
        return "gemini", model
    if base_url is not None:
        return "openai", model
    raise ValueError(
        f"model {model!r} matches no provider. Write it as 'openai:NAME', 'gemini:NAME', "
        "'local' or 'local:/path/model.gguf', or pass base_url= for an OpenAI-compatible server."
    )


def create_client(
    model: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    **options: Any,
) -> LLMClient:
    """Build the client a model string names. Optional SDKs are imported only here.

    Raises:
        ValueError: The model string routes nowhere.
        ProviderConfigError: The provider's extra is not installed, or its API key is missing.
    """
    provider, name = parse_model_string(model, base_url=base_url)
    if provider == CONTROL_MODEL:
        if base_url is not None or api_key is not None:
            raise ValueError("base_url and api_key do not apply to the control; remove them.")
        from optuna_llm_sampler.providers._control import RandomProposer

        return RandomProposer(**options)
    if provider == "openai":
        from optuna_llm_sampler.providers._openai import OpenAIClient

        return OpenAIClient(model=str(name), api_key=api_key, base_url=base_url, **options)
    if provider == "gemini":
        from optuna_llm_sampler.providers._gemini import GeminiClient

        return GeminiClient(model=str(name), api_key=api_key, base_url=base_url, **options)
    if base_url is not None or api_key is not None:
        raise ValueError("base_url and api_key do not apply to local models; remove them.")
    from optuna_llm_sampler.providers._llamacpp import LlamaCppClient

    return LlamaCppClient(model_path=name, **options)
