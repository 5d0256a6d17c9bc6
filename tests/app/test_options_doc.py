"""docs/options.md and the README say what the code does: generated pages are current, and the
``LLMSampler(...)`` call the README shows for the first command is the one ``run`` makes."""

from __future__ import annotations

import ast
from pathlib import Path
import re

from optuna_llm_sampler.app._llm_options import python_call
from optuna_llm_sampler.app._llm_options import sampler_options
from optuna_llm_sampler.app._options_doc import options_markdown
from optuna_llm_sampler.app._options_doc import REGENERATE


REPO = Path(__file__).resolve().parents[2]


def test_docs_options_page_is_generated_from_the_docstrings() -> None:
    page = (REPO / "docs" / "options.md").read_text(encoding="utf-8")
    assert page == options_markdown(), f"docs/options.md is stale; regenerate it: {REGENERATE}"


def test_every_option_of_every_group_is_on_the_page() -> None:
    page = options_markdown()
    for name in ("search_std", "max_tokens", "n_candidates", "widen_after", "max_retries", "seed"):
        assert f"| `{name}` |" in page
    assert "`--widen-steps-after`" in page and "`--history-style`" in page


def test_readme_shows_the_call_the_first_command_makes() -> None:
    options = sampler_options(env="MountainCarContinuous-v0", model="local", budget=60)
    call = python_call(
        {**options, "n_startup_trials": 20, "seed": 0}, env="MountainCarContinuous-v0"
    )
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "optuna-llm-sampler run --n-trials 60" in readme
    shown = [
        node
        for block in re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
        for node in ast.walk(ast.parse(block))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "LLMSampler"
    ]
    assert ast.dump(ast.parse(call).body[0].value) in {ast.dump(node) for node in shown}  # type: ignore[attr-defined]
