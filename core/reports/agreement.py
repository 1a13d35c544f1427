"""Agreement between raters on which model was better, measured on the calibration pairs that
every rater rates (rating.calibration_positions); the other pairs are shared out for coverage."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

CATEGORIES = ["tuned", "base", "tie", "both_bad"]
KAPPA_BOOTSTRAP = 500


def fleiss_kappa(rows: list[list[str]]) -> float:
    """Fleiss' κ for prompts each rated by the same number of raters (Fleiss 1971)."""
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as fk

    table, _ = aggregate_raters(np.array([[CATEGORIES.index(v) for v in row] for row in rows]), n_cat=len(CATEGORIES))
    return float(fk(table))


def cohens_kappa(a: list[str], b: list[str]) -> tuple[float, tuple[float, float]]:
    """Cohen's κ of two raters with its asymptotic 95 % interval (statsmodels)."""
    from statsmodels.stats.inter_rater import cohens_kappa as ck

    table = np.zeros((len(CATEGORIES), len(CATEGORIES)))
    for x, y in zip(a, b):
        table[CATEGORIES.index(x), CATEGORIES.index(y)] += 1
    used = [i for i in range(len(CATEGORIES)) if table[i].sum() or table[:, i].sum()]
    result = ck(table[np.ix_(used, used)])  # its interval is the asymptotic 95 % one
    return float(result.kappa), (float(result.kappa_low), float(result.kappa_upp))


def agreement(ratings: list[Any], calibration: set[int]) -> dict[str, Any]:
    """Agreement on model identity (which model was better, not which screen side).

    Computed only on calibration pairs rated by every rater who rated any of them; says why when
    it cannot be computed, rather than leaving a blank.
    """
    votes: dict[int, dict[str, str]] = defaultdict(dict)
    for r in ratings:
        if r.position in calibration:
            votes[r.position][r.rater] = r.preferred
    raters = sorted({rater for v in votes.values() for rater in v})
    complete = {p: v for p, v in sorted(votes.items()) if len(v) == len(raters)}
    result: dict[str, Any] = {"raters": raters, "calibration_pairs": len(calibration),
                              "calibration_pairs_rated_by_all": len(complete), "unit": "calibration prompts"}
    if len(raters) < 2:
        result["not_computable"] = (f"agreement needs two raters on the {len(calibration)} calibration pairs; "
                                    f"{len(raters)} rated them so far")
        return result
    if len(complete) < 2:
        result["not_computable"] = "fewer than two calibration pairs have been rated by every rater so far"
        return result
    rows = [[v[r] for r in raters] for v in complete.values()]
    result["percent_agreement"] = float(np.mean([len(set(row)) == 1 for row in rows]))
    if len(raters) == 2:
        kappa, interval = cohens_kappa([row[0] for row in rows], [row[1] for row in rows])
        result.update(cohens_kappa=kappa, cohens_kappa_ci=interval)
    else:
        point = fleiss_kappa(rows)
        if not np.isfinite(point):
            result["not_computable"] = "Fleiss' κ is undefined when every rating falls in one category"
            return result
        result["fleiss_kappa"] = point
        rng = np.random.default_rng(0)
        boots = [fleiss_kappa([rows[i] for i in rng.integers(0, len(rows), len(rows))]) for _ in range(KAPPA_BOOTSTRAP)]
        finite = [b for b in boots if np.isfinite(b)]
        if finite:
            result["fleiss_kappa_ci"] = (float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5)))
    result["pairwise"] = [[float(np.mean([row[i] == row[j] for row in rows])) for j in range(len(raters))]
                          for i in range(len(raters))]
    return result
