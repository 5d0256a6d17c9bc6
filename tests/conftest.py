from __future__ import annotations

from collections.abc import Iterator

import optuna
import pytest


@pytest.fixture(autouse=True)
def _optuna_logs_reach_caplog() -> Iterator[None]:
    """Optuna's loggers do not propagate by default; tests read warnings through caplog."""
    optuna.logging.enable_propagation()
    yield
    optuna.logging.disable_propagation()
