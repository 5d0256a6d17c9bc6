"""docs/options.md and the README say what the code does: generated pages are current, and the
``LLMSampler(...)`` call the README shows for the first command is the one ``run`` makes."""

from __future__ import annotations

import ast
from pathlib import Path
import re
import sys

import pytest

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


# --------------------------------------------------------------------------- the first command


def _extras() -> dict[str, list[str]]:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project["optional-dependencies"]


def _expand(extras: set[str], table: dict[str, list[str]]) -> set[str]:
    """The distributions ``pip install ".[EXTRAS]"`` brings, self-references followed."""
    names: set[str] = set()
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in table[extra]:
            name, _, rest = requirement.partition("[")
            if name == "optuna-llm-sampler":
                todo += rest.split("]")[0].split(",")
            else:
                names.add(re.split(r"[<>=!~ ;[]", requirement, maxsplit=1)[0].lower())
    return names


def _first_command_extras() -> set[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r'pip install "?\.\[([a-z,-]+)\]"? && optuna-llm-sampler run', readme)
    assert match, "the README's first command installs from the checkout with extras"
    return set(match.group(1).split(","))


@pytest.mark.parametrize("openai_key", [None, "sk-test-0123456789abcdef"])
def test_the_first_command_installs_what_run_picks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, openai_key: str | None
) -> None:
    """Whatever the environment (an OpenAI key or none), the model ``run`` picks needs only what
    the first command installs: without the provider's SDK, building the sampler names the extra
    it needs, and that extra is in the first command."""
    from optuna_llm_sampler import ProviderConfigError
    from optuna_llm_sampler.app._named_samplers import default_model
    from optuna_llm_sampler.app._named_samplers import make_sampler

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    if openai_key:
        monkeypatch.setenv("OPENAI_API_KEY", openai_key)
    monkeypatch.setenv("OPTUNA_LLM_SAMPLER_CACHE", str(tmp_path))  # no embedded model here
    sdk = {"gpt-4o": "openai", "local": "llama_cpp"}[default_model()]
    monkeypatch.setitem(sys.modules, sdk, None)  # not installed
    with pytest.raises(ProviderConfigError) as error:
        make_sampler("llm", seed=0)
        pytest.fail("the sampler was built without its provider's module")
    needed = set(re.findall(r"\[([a-z-]+)\]", str(error.value)))
    assert needed, f"the error names no extra to install: {error.value}"
    table = _extras()
    assert _expand(needed, table) <= _expand(_first_command_extras(), table)


def test_the_first_command_installs_every_optional_module_run_uses() -> None:
    names = _expand(_first_command_extras(), _extras())
    for distribution in (
        "openai",  # gpt-4o, picked with OPENAI_API_KEY set
        "llama-cpp-python",  # the embedded model, picked otherwise
        "gymnasium",  # the objective
        "matplotlib",  # plot
        "optuna-dashboard",  # the command run prints at its end
        "plotly",  # run's figures
        "cmaes",  # --sampler cmaes
        "scipy",  # --sampler qmc
    ):
        assert distribution in names, distribution


def test_all_holds_every_extra_but_dev() -> None:
    """``.ci/run`` installs ``.[all,dev]``: the README's "install everything"."""
    table = _extras()
    everything = _expand({"all"}, table)
    for extra in set(table) - {"dev", "all"}:
        assert _expand({extra}, table) <= everything, extra


def test_install_hints_name_the_checkout_extras() -> None:
    """Until the package is published, a hint says ``pip install ".[extra]"``; the extra it
    names exists."""
    table = _extras()
    for folder in ("app", "integrations"):
        for path in (REPO / "optuna_llm_sampler" / folder).glob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "optuna-llm-sampler[" not in text, path
            for extra in re.findall(r'pip install \\?"\.\[([a-z,-]+)\]', text):
                assert set(extra.split(",")) <= set(table), (path, extra)
    from optuna_llm_sampler.app._install import install_hint

    assert install_hint("plots").startswith('pip install ".[plots]"')


def test_the_readme_record_snippet_works_when_the_best_trial_is_a_startup_trial(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import optuna

    from optuna_llm_sampler import LLMSampler
    from optuna_llm_sampler.providers import ScriptedClient

    def objective(trial: optuna.Trial) -> float:
        return -((trial.suggest_float("a", -5, 5) - 1) ** 2) - trial.suggest_float("b", -5, 5) ** 2

    study = optuna.create_study(
        direction="maximize",
        sampler=LLMSampler(model=ScriptedClient(["a: -5, b: 5\nFar."] * 2), n_startup_trials=2),
    )
    study.enqueue_trial({"a": 1.0, "b": 0.0})  # the optimum, as a startup trial
    study.optimize(objective, n_trials=4)
    from optuna_llm_sampler import get_llm_record

    assert get_llm_record(study.best_trial) is None  # what the old snippet tripped over
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = next(
        b for b in re.findall(r"```python\n(.*?)```", readme, re.DOTALL) if "get_llm_record" in b
    )
    exec(compile(block, "README.md", "exec"), {"study": study})
    out = capsys.readouterr().out
    assert "user " in out and "assistant a: -5, b: 5" in out
