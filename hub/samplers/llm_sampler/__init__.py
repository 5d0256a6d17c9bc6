from optuna_llm_sampler import AbsolutePoints
from optuna_llm_sampler import HistoryOptions
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler import PRESETS
from optuna_llm_sampler import PromptOptions
from optuna_llm_sampler import StepsFromBest


__all__ = [
    "PRESETS",
    "AbsolutePoints",
    "HistoryOptions",
    "LLMSampler",
    "PromptOptions",
    "StepsFromBest",
]
