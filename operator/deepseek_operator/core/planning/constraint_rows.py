"""A MILP's linear constraints, added a row at a time and handed to scipy as one sparse matrix.

The arbiter and the replay's oracle both state their models as rows of (column, coefficient)
cells between a lower and an upper bound. This keeps the three parallel lists of the matrix's
coordinates and the two lists of bounds together, so neither model repeats the bookkeeping.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ConstraintRows:
    rows: list[int] = field(default_factory=list)
    columns: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)

    def add(self, cells: Iterable[tuple[int, float]], low: float, high: float) -> int:
        """The row low <= Σ value × x[column] <= high; returns its index."""
        index = len(self.low)
        for column, value in cells:
            self.rows.append(index)
            self.columns.append(column)
            self.values.append(value)
        self.low.append(low)
        self.high.append(high)
        return index

    def matrix(self, variables: int) -> Any:
        """The rows as a CSR matrix over `variables` columns (scipy's `csr_array`)."""
        from scipy.sparse import csr_array

        return csr_array(
            (self.values, (self.rows, self.columns)),
            shape=(len(self.low), variables),
            dtype=np.float64,
        )
