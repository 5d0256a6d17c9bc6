"""The linear policy of the ProPS tutorial: ``action = state @ W (+ bias)`` (argmax of it on a
``Discrete(n)`` action space, as in the ProPS paper)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np


if TYPE_CHECKING:
    from numpy.typing import ArrayLike


_MAX_PYTHON_FLOAT_WEIGHTS = 64


def _as_weights(weights: ArrayLike, state_dim: int, action_dim: int, what: str) -> np.ndarray:
    """Return ``weights`` as a float64 ``(state_dim, action_dim)`` matrix, or raise ValueError.

    A flat array of ``state_dim * action_dim`` values is accepted too and read row-major (the
    order in which the objective names its parameters ``a``, ``b``, ...).
    """
    w = np.array(weights, dtype=np.float64)
    shape = (state_dim, action_dim)
    if w.shape != shape:
        if w.ndim == 1 and w.size == state_dim * action_dim:
            w = w.reshape(shape)
        else:
            raise ValueError(
                f"weights must have shape {shape} for {what} (or be a flat array of "
                f"{state_dim * action_dim} values), got shape {w.shape}."
            )
    if not np.all(np.isfinite(w)):
        raise ValueError(f"weights must be finite, got {w.tolist()}.")
    return w


def _as_bias(bias: ArrayLike | None, action_dim: int, what: str) -> np.ndarray | None:
    """Return ``bias`` as a float64 ``(action_dim,)`` vector (``None`` stays ``None``)."""
    if bias is None:
        return None
    b = np.array(bias, dtype=np.float64).reshape(-1)
    if b.shape != (action_dim,):
        raise ValueError(
            f"bias must have {action_dim} value(s) for {what}, got shape {np.shape(bias)}."
        )
    if not np.all(np.isfinite(b)):
        raise ValueError(f"bias must be finite, got {b.tolist()}.")
    return b


class LinearPolicy:
    """A deterministic linear policy ``action = state @ weights (+ bias)``.

    As in the ProPS tutorial's ``LinearPolicy.get_action``, the action is the raw linear output:
    it is not clipped to the action space (the environment clips what it needs to, and
    MountainCarContinuous charges its action penalty on the unclipped value).

    The product is computed as an explicit sum over state rows in float64,
    ``((s[0] * W[0] + s[1] * W[1]) + ...) + bias``, rather than through BLAS: mathematically
    ``state @ W``, but with one fixed rounding order on every machine (BLAS kernels may fuse
    multiply-adds, which changes the last bit), so the fast MountainCar simulator reproduces it
    bit for bit.

    Args:
        weights: Weight matrix of shape ``(state_dim, action_dim)``.
        bias: Optional bias of shape ``(action_dim,)``.

    Example:
        .. code-block:: python

            import numpy as np
            from optuna_llm_sampler.rl import LinearPolicy

            policy = LinearPolicy([[0.0], [6.0]])  # MountainCar: push along the velocity
            policy.act(np.array([-0.5, 0.01], dtype=np.float32))  # array([0.06])
    """

    def __init__(self, weights: ArrayLike, bias: ArrayLike | None = None) -> None:
        w = np.array(weights, dtype=np.float64)
        if w.ndim != 2:
            raise ValueError(
                f"weights must be a 2-D (state_dim, action_dim) matrix, got shape {w.shape}."
            )
        self._weights = _as_weights(w, w.shape[0], w.shape[1], "this policy")
        self._bias = _as_bias(bias, w.shape[1], "this policy")
        self._weights.setflags(write=False)
        if self._bias is not None:
            self._bias.setflags(write=False)
        # Small policies (the usual case) act with Python floats: ~3x faster than numpy calls
        # per step, and the same IEEE float64 operations in the same order.
        self._columns: tuple[tuple[float, ...], ...] | None = None
        if self._weights.size <= _MAX_PYTHON_FLOAT_WEIGHTS:
            self._columns = tuple(tuple(col) for col in self._weights.T.tolist())
        self._bias_list = None if self._bias is None else self._bias.tolist()

    @property
    def weights(self) -> np.ndarray:
        """Read-only weight matrix of shape ``(state_dim, action_dim)``."""
        return self._weights

    @property
    def bias(self) -> np.ndarray | None:
        """Read-only bias of shape ``(action_dim,)``, or ``None``."""
        return self._bias

    @property
    def state_dim(self) -> int:
        """Number of state (observation) components."""
        return int(self._weights.shape[0])

    @property
    def action_dim(self) -> int:
        """Number of action components."""
        return int(self._weights.shape[1])

    def act(self, state: ArrayLike) -> np.ndarray:
        """Return the float64 action of shape ``(action_dim,)`` for one state.

        Args:
            state: Observation of shape ``(state_dim,)`` (float32 from gymnasium is fine).
        """
        s = np.asarray(state).reshape(-1)
        if s.shape[0] != self.state_dim:
            raise ValueError(
                f"state must have {self.state_dim} components, got shape {np.shape(state)}."
            )
        if self._columns is not None:
            values = [float(v) for v in s.tolist()]
            out = []
            for j, column in enumerate(self._columns):
                total = values[0] * column[0]
                for i in range(1, len(values)):
                    total = total + values[i] * column[i]
                if self._bias_list is not None:
                    total = total + self._bias_list[j]
                out.append(total)
            return np.array(out, dtype=np.float64)
        s = s.astype(np.float64)
        action = s[0] * self._weights[0]
        for i in range(1, self.state_dim):
            action = action + s[i] * self._weights[i]
        if self._bias is not None:
            action = action + self._bias
        return action

    def choose(self, state: ArrayLike) -> int:
        """The action of a ``Discrete(n)`` space for one state: the index of the largest score.

        The scores are :meth:`act`'s ``action_dim`` outputs; on ties the first index wins
        (``np.argmax``, as in the ProPS paper's code).

        Example:
            .. code-block:: python

                LinearPolicy([[1.0, -1.0]]).choose(np.array([0.5]))  # 0
        """
        return int(np.argmax(self.act(state)))

    def __repr__(self) -> str:
        bias = "" if self._bias is None else f", bias={self._bias.tolist()}"
        return f"LinearPolicy(weights={self._weights.tolist()}{bias})"
