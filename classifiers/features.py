"""Feature extraction for training: scikit-learn estimators around classifiers.hashing.

scikit-learn's own vectorisers are exact but slow for this job: the character analyser is
pure Python (~0.9 ms a message on its own), and the word vocabulary is a dict that skops
stores entry by entry (~1 s to load). Here every n-gram is hashed with numpy over the
whole batch at once (classifiers.hashing), and `fit` keeps only the buckets seen in at least
`min_df` training messages, as a sorted array: the saved model holds numpy arrays only, and
one-off n-grams (names, reference numbers) are dropped, which also helps the model generalise.

The class names and this module's path are part of every saved model file (skops names them,
and files.TRUSTED_TYPES trusts exactly these): keep them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin

from classifiers import hashing
from classifiers.hashing import Keys


class _HashedCounts(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Counts of hashed n-grams, restricted to buckets seen in enough training documents.

    Subclasses name their `analyzer` in classifiers.hashing.ANALYZERS.
    """

    analyzer: str
    ngram_range: tuple[int, int]
    n_buckets: int
    min_df: int
    max_df: float

    def _keys(self, texts: Sequence[str]) -> Keys:
        return hashing.keys(self.analyzer, texts, self.ngram_range, self.n_buckets)

    def fit(self, texts: Sequence[str], y: Any = None) -> _HashedCounts:
        """Learn which buckets occur in between min_df and max_df of the documents.

        Returns self.
        """
        self.buckets_ = hashing.fit_buckets(
            self._keys(texts), len(texts), self.n_buckets, self.min_df, self.max_df
        )
        return self

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Return a (documents x kept buckets) CSR matrix of n-gram counts."""
        found = hashing.counts(self._keys(texts), self.n_buckets, self.buckets_)
        indptr = np.searchsorted(found.documents, np.arange(len(texts) + 1))
        return sp.csr_matrix(
            (found.values, found.columns.astype(np.int32), indptr),
            shape=(len(texts), len(self.buckets_)),
        )


class CharNgramHasher(_HashedCounts):
    """Character n-grams of the lower-cased text, whitespace runs collapsed to one space."""

    analyzer = "char"

    def __init__(
        self,
        ngram_range: tuple[int, int] = (3, 5),
        n_buckets: int = 2**22,
        min_df: int = 2,
        max_df: float = 1.0,
    ) -> None:
        self.ngram_range = ngram_range
        self.n_buckets = n_buckets
        self.min_df = min_df
        self.max_df = max_df


class WordNgramHasher(_HashedCounts):
    """Word unigrams and bigrams (words of two or more letters or digits, lower case)."""

    analyzer = "word"

    def __init__(
        self,
        ngram_range: tuple[int, int] = (1, 2),
        n_buckets: int = 2**22,
        min_df: int = 2,
        max_df: float = 0.9,
    ) -> None:
        self.ngram_range = ngram_range
        self.n_buckets = n_buckets
        self.min_df = min_df
        self.max_df = max_df
