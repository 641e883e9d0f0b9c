"""String-to-index vocabularies with reserved PAD and UNK ids."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property

import numpy as np
import pandas as pd

from events.schema import N_RESERVED, PAD, UNK  # noqa: F401  (re-exported: the vocabularies' reserved ids)

SMALL = 256  # up to this many values (a request's events), a dict beats pandas' vectorised lookup ~10x


class Vocabulary:
    """Maps tokens to ids >= 2; `encode` is vectorised so a million events encode in milliseconds."""

    def __init__(self, tokens: Sequence[str]):
        self.tokens: list[str] = list(tokens)
        # object dtype: pandas 3 would otherwise convert the whole vocabulary on every lookup.
        self._index = pd.Index(self.tokens, dtype=object)
        if not self._index.is_unique:
            raise ValueError("vocabulary tokens must be unique")

    @classmethod
    def fit(cls, values: Iterable[str | None], min_count: int = 1) -> "Vocabulary":
        """Tokens seen at least `min_count` times, most frequent first (ties by token, for determinism)."""
        return cls.from_counts(pd.Series(values, dtype="object").dropna().value_counts(), min_count)

    @classmethod
    def from_counts(cls, counts: pd.Series, min_count: int = 1) -> "Vocabulary":
        """`fit` of the values these counts (token -> occurrences) were taken over."""
        counts = counts[counts >= min_count]
        order = sorted(zip(counts.index.tolist(), counts.to_numpy().tolist()), key=lambda kv: (-kv[1], str(kv[0])))
        return cls([str(token) for token, _ in order])

    def __len__(self) -> int:
        """Size of the id space, PAD and UNK included."""
        return len(self.tokens) + N_RESERVED

    @cached_property
    def _ids(self) -> dict[str, int]:
        return {token: position + N_RESERVED for position, token in enumerate(self.tokens)}

    def encode(self, values: Sequence[str | None] | np.ndarray | pd.Series) -> np.ndarray:
        """Ids for `values`; missing and unknown values become UNK. Fast for whole tables and for requests."""
        if len(values) <= SMALL:
            return np.fromiter((self._ids.get(v, UNK) for v in values), dtype=np.int64, count=len(values))
        positions = self._index.get_indexer(pd.Index(values, dtype="object"))
        return np.where(positions < 0, UNK, positions + N_RESERVED).astype(np.int64)

    def known_ids(self, values: Iterable[str]) -> np.ndarray:
        """Ids of those values the vocabulary knows (unknown ones dropped)."""
        ids = self.encode(list(values))
        return ids[ids >= N_RESERVED]

    def decode(self, ids: Iterable[int]) -> list[str | None]:
        return [self.tokens[i - N_RESERVED] if i >= N_RESERVED else None for i in ids]

    def to_list(self) -> list[str]:
        return list(self.tokens)
