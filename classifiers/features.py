"""Feature extraction: hashed word and character n-gram counts, vectorised over a batch.

scikit-learn's own vectorisers are exact but slow for this job: the character analyser is
pure Python (~0.9 ms a message on its own), and the word vocabulary is a dict that skops
stores entry by entry (~1 s to load). Here every n-gram is hashed with numpy over the
whole batch at once, and `fit` keeps only the buckets seen in at least `min_df` training
messages, as a sorted array: the saved model holds numpy arrays only, and one-off n-grams
(names, reference numbers) are dropped, which also helps the model generalise.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin

Keys = npt.NDArray[np.uint64]

_U64 = np.uint64
_ROLL = _U64(0x9E3779B97F4A7C15)
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"\w\w+")


def _mix(x: Keys) -> Keys:
    """splitmix64's finaliser: spreads every input bit over all output bits."""
    x = x ^ (x >> _U64(30))
    x = x * _MIX1
    x = x ^ (x >> _U64(27))
    x = x * _MIX2
    return x ^ (x >> _U64(31))


def _ngram_keys(
    symbols: Keys, lengths: npt.NDArray[np.int64], ngram_range: tuple[int, int], n_buckets: int
) -> Keys:
    """Hash every n-gram of consecutive symbols (characters or word hashes) that lies inside
    one document; return document * n_buckets + bucket for each occurrence."""
    doc = np.repeat(np.arange(len(lengths), dtype=np.uint64), lengths)
    buckets = _U64(n_buckets)
    low, high = ngram_range
    keys = [np.zeros(0, dtype=np.uint64)]
    rolling = np.zeros(len(symbols), dtype=np.uint64)
    for n in range(1, high + 1):
        m = len(symbols) - n + 1
        if m <= 0:
            break
        rolling = rolling[:m] * _ROLL + symbols[n - 1 : n - 1 + m]
        if n >= low:
            inside = doc[:m] == doc[n - 1 : n - 1 + m]  # never across two messages
            keys.append(doc[:m][inside] * buckets + _mix(rolling[inside] + _U64(n)) % buckets)
    return np.concatenate(keys)


class _HashedCounts(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Counts of hashed n-grams, restricted to buckets seen in enough training documents.

    Subclasses implement `_keys(texts)`, returning (document index, bucket) per n-gram
    occurrence as one uint64 per occurrence: document * n_buckets + bucket.
    """

    n_buckets: int
    min_df: int
    max_df: float

    def _keys(self, texts: Sequence[str]) -> Keys:
        raise NotImplementedError

    def fit(self, texts: Sequence[str], y: Any = None) -> _HashedCounts:
        """Learn which buckets occur in between min_df and max_df of the documents.

        Returns self.
        """
        unique = np.unique(self._keys(texts))
        buckets, frequency = np.unique(unique % _U64(self.n_buckets), return_counts=True)
        keep = (frequency >= self.min_df) & (frequency <= self.max_df * len(texts))
        self.buckets_ = buckets[keep].astype(np.uint64)
        return self

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Return a (documents x kept buckets) CSR matrix of n-gram counts."""
        # Sorting first makes the bucket look-up below walk memory in order (3x faster).
        unique, counts = np.unique(self._keys(texts), return_counts=True)
        docs = (unique // _U64(self.n_buckets)).astype(np.int64)
        buckets = unique % _U64(self.n_buckets)
        column = np.searchsorted(self.buckets_, buckets)
        found = column < len(self.buckets_)
        found[found] = self.buckets_[column[found]] == buckets[found]
        indptr = np.searchsorted(docs[found], np.arange(len(texts) + 1))
        return sp.csr_matrix(
            (counts[found].astype(np.float64), column[found].astype(np.int32), indptr),
            shape=(len(texts), len(self.buckets_)),
        )


class CharNgramHasher(_HashedCounts):
    """Character n-grams of the lower-cased text, whitespace runs collapsed to one space."""

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

    def _keys(self, texts: Sequence[str]) -> Keys:
        padded = [" " + _SPACES.sub(" ", t.lower()).strip() + " " for t in texts]
        lengths = np.fromiter((len(t) for t in padded), dtype=np.int64, count=len(padded))
        # surrogatepass: a lone surrogate from a badly decoded message must not fail the batch.
        codes = np.frombuffer("".join(padded).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        return _ngram_keys(codes.astype(np.uint64), lengths, self.ngram_range, self.n_buckets)


class WordNgramHasher(_HashedCounts):
    """Word unigrams and bigrams (words of two or more letters or digits, lower case)."""

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

    def _keys(self, texts: Sequence[str]) -> Keys:
        tokens = [_WORD.findall(t.lower()) for t in texts]
        lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
        # crc32, not hash(): Python's string hash changes with every process.
        word = np.fromiter(
            (zlib.crc32(w.encode("utf-8", "surrogatepass")) for doc in tokens for w in doc),
            dtype=np.uint64,
            count=int(lengths.sum()),
        )
        return _ngram_keys(word, lengths, self.ngram_range, self.n_buckets)
