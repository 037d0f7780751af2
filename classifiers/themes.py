"""What complaints were about: themes found in their text (issue 22).

NMF on TF-IDF of the cleaned complaint text (scikit-learn), the usual topic model for short
documents. Terms must appear in at least three complaints (and not in most of them), so a
name, an address or a one-off detail never becomes a term; contacts are scrubbed first and
tokens with digits dropped. Each theme is its terms and the complaints mainly about it,
most typical first (by index): no text leaves the module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from classifiers.text import scrub_contacts

MIN_DOCUMENTS = 3  # a term must be in at least this many complaints
TOKENS = r"(?u)\b[^\W\d_]{3,}\b"  # words of letters only


@dataclass(frozen=True)
class Theme:
    terms: tuple[str, ...]
    members: tuple[int, ...]  # indexes of the documents mainly about it, most typical first


def themes(documents: Sequence[str], most: int = 6, terms: int = 6) -> list[Theme]:
    """Themes of `documents` (complaints' text), largest first; [] when there are too few
    complaints to say anything."""
    if len(documents) < 2 * MIN_DOCUMENTS:
        return []
    from sklearn.decomposition import NMF
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        stop_words="english",
        token_pattern=TOKENS,
        lowercase=True,
        min_df=MIN_DOCUMENTS,
        max_df=0.6,
        sublinear_tf=True,
    )
    try:
        matrix = vectorizer.fit_transform(scrub_contacts(text) for text in documents)
    except ValueError:  # no term left
        return []
    k = max(1, min(most, len(documents) // 5, matrix.shape[1] - 1))
    model = NMF(n_components=k, init="nndsvda", random_state=0, max_iter=400)
    weights = model.fit_transform(matrix)
    vocabulary = vectorizer.get_feature_names_out()
    main = weights.argmax(axis=1)
    found = []
    for topic in range(k):
        members = [i for i in range(len(documents)) if main[i] == topic and weights[i, topic] > 0]
        if not members:
            continue
        top = model.components_[topic].argsort()[::-1][:terms]
        members.sort(key=lambda i: -weights[i, topic])
        found.append(Theme(tuple(str(vocabulary[t]) for t in top), tuple(members)))
    return sorted(found, key=lambda theme: -len(theme.members))
