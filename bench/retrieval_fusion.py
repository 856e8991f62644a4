"""Learn the fused ranking's weights (``pipeline/knowledge/fusion.py``) on the tune half of the eval set.

The model is a logistic regression: for each tune question and each of its candidates (each
script's ``RERANK_DEPTH`` nearest chunks, as search fetches them), "is this chunk from a relevant
document?" from the features of ``fusion.features`` (every signal standardised over the
question's candidates). L2 penalty 1 on the weights; fitted by Newton's method (a few exact
steps, no randomness: the same set gives the same weights).

Which features: each set in ``bench.retrieval.LOGISTIC_FEATURE_SETS`` is scored by repeated
cross-validation *inside the tune half* (20 random category-stratified 2-fold splits: fit on one
fold, objective on the other, mean), so choosing the set never looks at the report half either.
The best set is fitted on the whole tune half and printed as the ``WEIGHTS`` literal to paste
into fusion.py; ``--check`` fails when the shipped weights differ from what this fits.

    python -m bench.retrieval_fusion            # the selection table and the weights
    python -m bench.retrieval_fusion --check    # exit 1 unless fusion.WEIGHTS is what the tune half gives
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import numpy as np

from bench.retrieval import (CATEGORIES, LOGISTIC_FEATURE_SETS, Case, metrics, objective, ranked_documents,
                             scratch_database, signals)

L2 = 1.0
CV_REPEATS = 20


def design(cases: Sequence[Case], centroids, features: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and 0/1 labels of every candidate of every case."""
    from pipeline.knowledge import fusion

    rows, labels = [], []
    for case in cases:
        rows.append(fusion.features(signals(case, centroids), features))
        labels.append(np.isin(case.documents, case.question.relevant).astype(np.float64))
    return np.vstack(rows), np.concatenate(labels)


def fit_weights(cases: Sequence[Case], centroids, features: Sequence[str], l2: float = L2) -> dict[str, float]:
    """The logistic model's weights (the intercept dropped: it does not change a ranking)."""
    x, y = design(cases, centroids, features)
    x1 = np.hstack([x, np.ones((len(x), 1))])
    penalty = l2 * np.diag([1.0] * len(features) + [0.0])
    w = np.zeros(x1.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-x1 @ w))
        step = np.linalg.solve((x1 * (p * (1 - p))[:, None]).T @ x1 + penalty, x1.T @ (p - y) + penalty @ w)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return {name: round(float(value), 4) for name, value in zip(features, w[:-1])}


def _objective(cases: Sequence[Case], centroids, weights: dict[str, float]) -> float:
    from pipeline.knowledge import fusion

    ranked = [ranked_documents(case, fusion.scores(signals(case, centroids), weights)) for case in cases]
    return objective(metrics(ranked, [case.question for case in cases]))


def cross_validated(cases: Sequence[Case], centroids, features: Sequence[str], repeats: int = CV_REPEATS) -> float:
    """Mean objective over ``repeats`` random 2-fold splits of ``cases`` (stratified by category), both ways."""
    rng = np.random.default_rng(0)
    scores = []
    for _ in range(repeats):
        first: list[Case] = []
        for category in CATEGORIES:
            of = [c for c in cases if c.question.category == category]
            order = rng.permutation(len(of))
            first += [of[i] for i in order[: len(of) // 2]]
        ids = {c.question.id for c in first}
        second = [c for c in cases if c.question.id not in ids]
        for train, test in ((first, second), (second, first)):
            scores.append(_objective(test, centroids, fit_weights(train, centroids, features)))
    return float(np.mean(scores))


def select(tune_cases: Sequence[Case], centroids) -> tuple[list[tuple[tuple[str, ...], float]], dict[str, float]]:
    """Every feature set with its cross-validated objective (tune half only), and the best set's weights."""
    table = [(features, cross_validated(tune_cases, centroids, features)) for features in LOGISTIC_FEATURE_SETS]
    best = max(table, key=lambda row: row[1])[0]
    return table, fit_weights(tune_cases, centroids, best)


def main(argv: Optional[list[str]] = None) -> int:
    from bench.retrieval import prepare
    from pipeline.knowledge import fusion

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 unless fusion.WEIGHTS matches the fit")
    args = parser.parse_args(argv)
    with scratch_database() as url:
        prepared = prepare(url)
    tune_cases, _ = prepared.halves()
    table, weights = select(tune_cases, prepared.centroids)
    print("Feature sets, objective (mean over categories of R@5 + MRR) by repeated 2-fold CV inside the tune half:\n")
    print("| features | CV objective |\n|---|---|")
    for features, score in table:
        print(f"| {' + '.join(features)} | {score:.3f} |")
    print("\nWEIGHTS = {")
    for name, value in weights.items():
        print(f'    "{name}": {value},')
    print("}")
    shipped = fusion.WEIGHTS
    same = list(shipped) == list(weights) and all(abs(shipped[n] - weights[n]) <= 1e-3 for n in weights)
    print(f"\nfusion.WEIGHTS {'matches' if same else 'DIFFERS FROM'} this fit.")
    return 0 if same or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
