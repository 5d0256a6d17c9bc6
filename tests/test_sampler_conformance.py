"""LLMSampler inherits Optuna's own sampler conformance suites."""

from __future__ import annotations

from collections.abc import Callable

from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase
from optuna.testing.pytest_samplers import RelativeSamplerTestCase
from optuna.testing.pytest_samplers import SingleOnlySamplerTestCase
import pytest

from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler.providers import ScriptedClient
from tests._answers import SchemaResponder


class TestLLMSampler(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        def factory() -> BaseSampler:
            client = ScriptedClient(respond=SchemaResponder(seed=0), supports_schema=True)
            return LLMSampler(model=client, n_startup_trials=0, seed=0)

        return factory


@pytest.mark.parametrize("base", ["gp", "tpe", "cmaes", "random"])
class TestAdvisedLLMSampler(
    BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase
):
    """The same suites with one of Optuna's samplers in control and the LLM proposing 30 %."""

    @pytest.fixture
    def sampler(self, base: str) -> Callable[[], BaseSampler]:
        def factory() -> BaseSampler:
            client = ScriptedClient(respond=SchemaResponder(seed=0), supports_schema=True)
            return LLMSampler(model=client, base_sampler=base, llm_share=0.3, seed=0)

        return factory
