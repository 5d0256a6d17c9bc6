"""Install hints: the extra of this package that brings a missing optional dependency.

The package is installed from a checkout until it is published (the README's first command is
``pip install ".[quickstart]"``), so every hint names the extra the same way.
"""

from __future__ import annotations

import importlib.util
import sys


def install_hint(*extras: str) -> str:
    """The command that installs ``extras`` of this package, from a checkout.

    Example:
        >>> install_hint("plots")
        'pip install ".[plots]" (in a checkout of optuna-llm-sampler)'
    """
    return f'pip install ".[{",".join(extras)}]" (in a checkout of optuna-llm-sampler)'


def is_missing(module: str) -> bool:
    """Whether ``module`` cannot be imported, found without importing it (PyTorch takes seconds).

    A module set to ``None`` in ``sys.modules`` counts as missing, as it does for ``import``.

    Example:
        >>> is_missing("json"), is_missing("no_such_module_here")
        (False, True)
    """
    if module in sys.modules:
        return sys.modules[module] is None
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a parent package that is missing, or a broken __spec__
        return True
