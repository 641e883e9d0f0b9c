"""Rows equal in every column to a row read before: a source's exact duplicate lines."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa


class DuplicateRows:
    """Remembers one 64-bit hash per distinct row read so far (8 bytes a row, e.g. 4 MiB for Online Retail's
    541,909 lines); two different rows sharing a hash would be taken for duplicates, a chance below 1e-8 at a
    million rows."""

    def __init__(self) -> None:
        self._seen = np.empty(0, dtype=np.uint64)  # sorted, distinct

    def mark(self, table: pa.Table) -> pa.Array:
        """True where a row repeats an earlier row of this table or of a table marked before."""
        hashes = pd.util.hash_pandas_object(table.to_pandas(), index=False).to_numpy()
        repeated = pd.Series(hashes).duplicated().to_numpy(copy=True)
        at = np.minimum(np.searchsorted(self._seen, hashes), max(len(self._seen) - 1, 0))
        if len(self._seen):
            repeated |= self._seen[at] == hashes
        self._seen = np.union1d(self._seen, hashes)
        return pa.array(repeated)
