"""Hashed word and character n-grams, vectorised over a batch: numpy only.

Used both by the scikit-learn estimators in classifiers.features (training, and models
loaded from skops files) and by classifiers.compact (prediction in the daemon), so the two
paths count exactly the same n-grams.

Every n-gram occurrence becomes one uint64 key, `document * n_buckets + bucket`; a model
keeps the buckets seen in enough training documents as a sorted uint64 array, and a
document's counts are looked up in it (`counts`).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

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


def char_keys(texts: Sequence[str], ngram_range: tuple[int, int], n_buckets: int) -> Keys:
    """Character n-grams of the lower-cased text, whitespace runs collapsed to one space."""
    padded = [" " + _SPACES.sub(" ", t.lower()).strip() + " " for t in texts]
    lengths = np.fromiter((len(t) for t in padded), dtype=np.int64, count=len(padded))
    # surrogatepass: a lone surrogate from a badly decoded message must not fail the batch.
    codes = np.frombuffer("".join(padded).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return _ngram_keys(codes.astype(np.uint64), lengths, ngram_range, n_buckets)


def word_keys(texts: Sequence[str], ngram_range: tuple[int, int], n_buckets: int) -> Keys:
    """Word n-grams (words of two or more letters or digits, lower case)."""
    tokens = [_WORD.findall(t.lower()) for t in texts]
    lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
    # crc32, not hash(): Python's string hash changes with every process.
    word = np.fromiter(
        (zlib.crc32(w.encode("utf-8", "surrogatepass")) for doc in tokens for w in doc),
        dtype=np.uint64,
        count=int(lengths.sum()),
    )
    return _ngram_keys(word, lengths, ngram_range, n_buckets)


# Analyzer name -> key function; the names are stored in compact model files.
ANALYZERS = {"char": char_keys, "word": word_keys}


def keys(analyzer: str, texts: Sequence[str], ngram_range: tuple[int, int], n_buckets: int) -> Keys:
    """The n-gram keys of `texts` for "char" or "word" n-grams. Raises KeyError."""
    return ANALYZERS[analyzer](texts, ngram_range, n_buckets)


def fit_buckets(found: Keys, n_documents: int, n_buckets: int, min_df: int, max_df: float) -> Keys:
    """The sorted buckets occurring in between min_df and max_df (a fraction) of the
    `n_documents` documents whose n-gram keys are `found`."""
    unique = np.unique(found)
    buckets, frequency = np.unique(unique % _U64(n_buckets), return_counts=True)
    keep = (frequency >= min_df) & (frequency <= max_df * n_documents)
    kept: Keys = buckets[keep].astype(np.uint64)
    return kept


class Counts(NamedTuple):
    """Sparse n-gram counts, one entry per (document, column) present, ordered by document
    then column (CSR order): column i is the i-th kept bucket."""

    documents: npt.NDArray[np.int64]
    columns: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


_ONE = _U64(1)
_SIX = _U64(6)
_LOW6 = _U64(63)
# Largest n_buckets given a bitmap index (2**26: an 8 MB bitmap); beyond it, binary search.
MAX_BITMAP_BUCKETS = 2**26


class BucketIndex:
    """The column of every kept bucket in constant time: a bitmap over all n_buckets, and
    the number of kept buckets before each 64-bucket word (for 2**22 buckets, 768 KB).

    Gives exactly what binary search in the sorted kept buckets gives, ~4x faster.
    """

    def __init__(self, kept: Keys, n_buckets: int) -> None:
        words = np.zeros(-(-n_buckets // 64), dtype=np.uint64)
        np.bitwise_or.at(words, (kept >> _SIX).astype(np.intp), _ONE << (kept & _LOW6))
        self.words = words
        self.before = np.zeros(len(words), dtype=np.int64)
        np.cumsum(np.bitwise_count(words[:-1]), out=self.before[1:])

    def find(self, buckets: Keys) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
        """(whether each bucket is kept, its column where it is)."""
        block = (buckets >> _SIX).astype(np.intp)
        word = self.words[block]
        bit = _ONE << (buckets & _LOW6)
        present = (word & bit) != 0
        column = self.before[block] + np.bitwise_count(word & (bit - _ONE))
        return present, column


def bucket_index(kept: Keys, n_buckets: int) -> BucketIndex | None:
    """A BucketIndex for `kept`, or None when n_buckets is too large for a bitmap (or numpy,
    before 2.0, has no bitwise_count): then `counts` uses binary search."""
    if n_buckets > MAX_BITMAP_BUCKETS or not hasattr(np, "bitwise_count"):
        return None
    return BucketIndex(kept, n_buckets)


def counts(found: Keys, n_buckets: int, kept: Keys, index: BucketIndex | None = None) -> Counts:
    """Count the n-gram keys `found` per document, keeping only the sorted buckets `kept`
    (looked up in `index`, made from `kept`, when given)."""
    documents = found // _U64(n_buckets)
    buckets = found % _U64(n_buckets)
    if index is not None:
        present, column = index.find(buckets)
    else:
        column = np.searchsorted(kept, buckets)
        present = column < len(kept)
        present[present] = kept[column[present]] == buckets[present]
    width = len(kept)
    if width == 0:
        nothing = np.zeros(0, dtype=np.int64)
        return Counts(nothing, nothing, np.zeros(0, dtype=np.float64))
    # Only the kept n-grams are sorted and counted, as one number per (document, column):
    # sorted, they are in CSR order. Looking every key up first and sorting the kept ones
    # as 32-bit numbers (when they fit) is 1.4x faster than sorting every key first.
    cells = documents[present] * _U64(width) + column[present].astype(np.uint64)
    if len(cells) and int(cells.max()) < 2**32:
        cells = cells.astype(np.uint32)
    unique, count = np.unique(cells, return_counts=True)
    unique = unique.astype(np.int64)
    return Counts(unique // width, unique % width, count.astype(np.float64))
