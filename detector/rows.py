"""An append-only table of float rows in one numpy array (amortised doubling).

Per-night records (one row per 30 s epoch, a few hundred episodes) stay compact and cheap to
checkpoint: 8 bytes a value instead of a Python object per record.
"""

from __future__ import annotations

import numpy as np

from detector.vectors import state_array


class Rows:
    def __init__(self, width: int, capacity: int = 64) -> None:
        self._a = np.empty((capacity, width))
        self.n = 0

    def append(self, row) -> None:
        if self.n == len(self._a):
            grown = np.empty((2 * len(self._a), self._a.shape[1]))
            grown[: self.n] = self._a[: self.n]
            self._a = grown
        self._a[self.n] = row
        self.n += 1

    def drop_first(self, k: int) -> None:
        """Forget the oldest ``k`` rows."""
        k = min(k, self.n)
        self._a[: self.n - k] = self._a[k : self.n].copy()
        self.n -= k

    @property
    def data(self) -> np.ndarray:
        """The rows so far (a view; do not keep it across appends)."""
        return self._a[: self.n]

    def __len__(self) -> int:
        return self.n

    def state(self) -> dict:
        """The rows so far (a copy; the spare capacity is not state)."""
        return {"rows": self._a[: self.n].copy()}

    @classmethod
    def from_state(cls, state: dict, width: int) -> Rows:
        """The table of ``state()``; its rows must be ``width`` wide."""
        a = state_array(state, "rows", np.float64, width=width)
        rows = cls(width, max(64, 2 * len(a)))
        rows._a[: len(a)] = a
        rows.n = len(a)
        return rows

    def __getstate__(self) -> dict:
        return {"a": self._a[: self.n].copy(), "n": self.n}

    def __setstate__(self, state: dict) -> None:
        self.n = state["n"]
        self._a = np.empty((max(64, 2 * self.n), state["a"].shape[1]))
        self._a[: self.n] = state["a"]
