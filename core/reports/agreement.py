"""Agreement between raters on which model was better, measured on the calibration pairs that
every rater rates (rating.calibration_positions); the other pairs are shared out for coverage.

Krippendorff's α uses every calibration prompt with two or more votes (missing ratings allowed),
so one rater who has cast a single calibration vote does not make agreement uncomputable for
everyone; Cohen's / Fleiss' κ need prompts rated by all raters. Every interval is a bootstrap
over prompts clipped to [-1, 1], and every number that cannot be computed says why (issue 26)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

CATEGORIES = ["tuned", "base", "tie", "both_bad"]
KAPPA_BOOTSTRAP = 500
INTERVAL_MIN_PROMPTS = 5  # fewer prompts give degenerate bootstrap intervals such as (0, 0)


def fleiss_kappa(rows: list[list[str]]) -> float:
    """Fleiss' κ for prompts each rated by the same number of raters (Fleiss 1971)."""
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as fk

    table, _ = aggregate_raters(np.array([[CATEGORIES.index(v) for v in row] for row in rows]), n_cat=len(CATEGORIES))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(fk(table))


def cohens_kappa(rows: list[list[str]]) -> float:
    """Cohen's κ of two raters (Cohen 1960); nan when both put every vote in one category."""
    from statsmodels.stats.inter_rater import cohens_kappa as ck

    table = np.zeros((len(CATEGORIES), len(CATEGORIES)))
    for x, y in rows:
        table[CATEGORIES.index(x), CATEGORIES.index(y)] += 1
    used = [i for i in range(len(CATEGORIES)) if table[i].sum() or table[:, i].sum()]
    if len(used) < 2:
        return float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):  # its variance terms; only κ is used
        return float(ck(table[np.ix_(used, used)]).kappa)


def krippendorff_alpha(votes: dict[int, dict[str, str]], raters: list[str]) -> float:
    """Krippendorff's α, nominal, over prompts with missing ratings (Krippendorff 2011; the
    `krippendorff` package); nan when every vote falls in one category."""
    import krippendorff

    data = np.array([[CATEGORIES.index(v[r]) if r in v else np.nan for v in votes.values()] for r in raters])
    if len({x for x in data.flatten() if not np.isnan(x)}) < 2:
        return float("nan")
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def _interval(items: list[Any], statistic: Callable[[list[Any]], float]) -> tuple[float, float] | None:
    """95 % percentile bootstrap over prompts, clipped to [-1, 1]; None on too few prompts or when
    most resamples are degenerate (every vote in one category)."""
    if len(items) < INTERVAL_MIN_PROMPTS:
        return None
    rng = np.random.default_rng(0)
    boots = [statistic([items[i] for i in rng.integers(0, len(items), len(items))]) for _ in range(KAPPA_BOOTSTRAP)]
    finite = [b for b in boots if np.isfinite(b)]
    if len(finite) < KAPPA_BOOTSTRAP / 2:
        return None
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(np.clip(low, -1, 1)), float(np.clip(high, -1, 1))


def _one_category(rows: list[list[str]]) -> str:
    return f"every vote on them is '{rows[0][0].replace('_', ' ')}', so chance agreement is total"


def agreement(ratings: list[Any], calibration: set[int]) -> dict[str, Any]:
    """Agreement on model identity (which model was better, not which screen side) on the
    calibration prompts; says why a number cannot be computed rather than leaving a blank."""
    votes: dict[int, dict[str, str]] = defaultdict(dict)
    for r in ratings:
        if r.position in calibration:
            votes[r.position][r.rater] = r.preferred
    raters = sorted({rater for v in votes.values() for rater in v})
    shared = {p: v for p, v in sorted(votes.items()) if len(v) >= 2}
    complete = {p: v for p, v in shared.items() if len(v) == len(raters)}
    result: dict[str, Any] = {"raters": raters, "calibration_pairs": len(calibration),
                              "calibration_pairs_rated_by_all": len(complete),
                              "calibration_pairs_rated_by_two": len(shared), "unit": "calibration prompts"}
    if len(raters) < 2:
        result["not_computable"] = (f"agreement needs two raters on the {len(calibration)} calibration pairs; "
                                    f"{len(raters)} rated them so far")
        return result
    if len(shared) < 2:
        result["not_computable"] = "fewer than two calibration pairs have votes from two raters so far"
        return result
    result["percent_agreement"] = float(np.mean([len(set(v.values())) == 1 for v in shared.values()]))
    alpha = krippendorff_alpha(shared, raters)
    if not np.isfinite(alpha):
        result["not_computable"] = ("Krippendorff's α and κ are not computable, because "
                                    + _one_category([list(next(iter(shared.values())).values())]))
        return result
    result["krippendorff_alpha"] = alpha
    result["krippendorff_alpha_ci"] = _interval(list(shared.items()), lambda s: krippendorff_alpha(dict(s), raters))
    result["pairwise"] = [[_pairwise(shared, a, b) for b in raters] for a in raters]
    rows = [[v[r] for r in raters] for v in complete.values()]
    name, kappa = ("cohens_kappa", cohens_kappa) if len(raters) == 2 else ("fleiss_kappa", fleiss_kappa)
    if len(rows) < 2:
        result["kappa_not_computable"] = (f"κ needs prompts rated by all {len(raters)} raters; {len(rows)} "
                                          "calibration pairs are so far (α above uses every pair with two votes)")
        return result
    point = kappa(rows)
    if not np.isfinite(point):
        result["kappa_not_computable"] = "κ is not computable, because " + _one_category(rows)
        return result
    result[name] = point
    result[f"{name}_ci"] = _interval(rows, kappa)
    return result


def _pairwise(votes: dict[int, dict[str, str]], a: str, b: str) -> float | None:
    both = [v for v in votes.values() if a in v and b in v]
    return float(np.mean([v[a] == v[b] for v in both])) if both else None
