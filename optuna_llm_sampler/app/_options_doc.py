"""docs/options.md: every option of ``LLMSampler`` and its groups, from their docstrings."""

from __future__ import annotations

import dataclasses
import inspect

from optuna_llm_sampler._options import AbsolutePoints
from optuna_llm_sampler._options import HistoryOptions
from optuna_llm_sampler._options import option_docs
from optuna_llm_sampler._options import plain_markup
from optuna_llm_sampler._options import PRESETS
from optuna_llm_sampler._options import PromptOptions
from optuna_llm_sampler._options import SHARED_PROPOSAL_FIELDS
from optuna_llm_sampler._options import StepsFromBest
from optuna_llm_sampler._sampler import LLMSampler
from optuna_llm_sampler.app._llm_options import dataclass_call
from optuna_llm_sampler.app._llm_options import FLAGS


#: The command that writes docs/options.md from :func:`options_markdown`.
REGENERATE = (
    'python -c "from optuna_llm_sampler.app._options_doc import options_markdown as m; '
    "print(m(), end='')\" > docs/options.md"
)


def options_markdown() -> str:
    """docs/options.md: every option of ``LLMSampler`` and its groups, from their docstrings.

    Regenerate the page with :data:`REGENERATE`; a test checks it is current.
    """
    flags = {(flag.owner, flag.field): flag.name for flag in FLAGS}
    lines = [
        "# `LLMSampler` options",
        "",
        "Generated from the docstrings of `LLMSampler` and its option groups (a test checks",
        "that it is current; regenerate it with the command below). The flags are those of",
        "`optuna-llm-sampler run` and `compare`.",
        "",
        "```bash",
        REGENERATE,
        "```",
        "",
        "```python",
        "from optuna_llm_sampler import LLMSampler, PromptOptions, HistoryOptions, StepsFromBest",
        "",
        "sampler = LLMSampler(",
        '    model="gpt-4o",',
        '    prompt=PromptOptions(task_description="f(a,b) is the episode reward.", budget=100),',
        '    history=HistoryOptions(mode="best_recent", max_tokens=2000),',
        '    proposal=StepsFromBest(n_candidates=3, out_of_range="clip"),',
        "    seed=0,",
        ")",
        "```",
        "",
        "## Presets",
        "",
        "`preset` chooses the proposal, base sampler and LLM share where `proposal`,",
        '`base_sampler` or `llm_share` is not given: `"auto"` (the default) is `"guided"` for a',
        'model that runs in-process (`model="local"`, a GGUF file) and `"tutorial"` for the',
        "others. `--guidance on|off|advised|auto` on the command line.",
        "",
        "| preset | proposal | base sampler | LLM share |",
        "| --- | --- | --- | --- |",
    ]
    for name, preset in PRESETS.items():
        base = preset.base_sampler or "random (startup and fallbacks)"
        lines.append(
            f"| `{name}` | `{dataclass_call(preset.proposal, env='')}` | {base} | "
            f"{preset.llm_share:g} |"
        )
    lines += [
        "",
        "## `LLMSampler(...)`",
        "",
        "| argument | default | meaning |",
        "| --- | --- | --- |",
    ]
    parameters = inspect.signature(LLMSampler.__init__).parameters
    for name, text in option_docs(LLMSampler, "Args").items():
        default = parameters[name].default
        shown = "required" if default is inspect.Parameter.empty else f"`{default!r}`"
        lines.append(f"| `{name}` | {shown} | {_cell(text)} |")
    for cls in (PromptOptions, HistoryOptions, AbsolutePoints, StepsFromBest):
        first = (cls.__doc__ or "").strip().splitlines()[0]
        lines += [
            "",
            f"## `{cls.__name__}`",
            "",
            first,
            "",
            "| option | default | flag | meaning |",
            "| --- | --- | --- | --- |",
        ]
        defaults = {f.name: f for f in dataclasses.fields(cls)}
        for name, text in option_docs(cls).items():
            f = defaults[name]
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            owner = (
                AbsolutePoints if cls is StepsFromBest and name in SHARED_PROPOSAL_FIELDS else cls
            )
            flag = flags.get((owner, name), "")
            lines.append(
                f"| `{name}` | `{default!r}` | {f'`{flag}`' if flag else ''} | {_cell(text)} |"
            )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Docstring markup as Markdown in a table cell: ``x`` and :class:`~a.X` become `x`, `X`."""
    return plain_markup(text, code="`").replace("|", "\\|")
