"""Recompute every headline number of an evaluation from its ratings CSV alone.

`python bench/recompute_from_csv.py run-1-evaluation.csv` prints JSON. Written as a statistician
would, from the definitions in docs/statistics.md, with numpy/scipy/statsmodels/krippendorff and no
studio code, so that it checks the studio rather than repeating it
(tests/test_stats.py::test_the_recompute_script_reproduces_the_summary_from_the_csv).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections import defaultdict

import numpy as np
from scipy.special import betaln
from scipy.stats import binomtest, bootstrap, wilcoxon
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

VALUE = {"tuned": 1.0, "base": 0.0, "tie": 0.5, "both_bad": 0.5}
LOG_20 = math.log(20)


def log_e(w: int | np.ndarray, lost: int | np.ndarray) -> float | np.ndarray:
    return betaln(np.add(w, 1), np.add(lost, 1)) + np.add(w, lost) * math.log(2)


def confidence_sequence(w: int, lost: int) -> tuple[float, float]:
    """{p : p^W (1-p)^L > B(W+1, L+1) / 20}, on a fine grid (good to 1e-6)."""
    p = np.linspace(0, 1, 1_000_001)
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = np.nan_to_num(w * np.log(p), nan=0.0) + np.nan_to_num(lost * np.log1p(-p), nan=0.0) \
            > betaln(w + 1, lost + 1) - LOG_20
    return float(p[inside].min()), float(p[inside].max())


def needed(w0: int, l0: int, target: float = 0.6, power: float = 0.8, limit: int = 3000) -> int | None:
    """More decisive prompts until the e-value has crossed 20 with probability `power` if each is
    won with probability `target`: the distribution of extra wins among paths not yet crossed."""
    if log_e(w0, l0) >= LOG_20:
        return 0
    alive, crossed = np.array([1.0]), 0.0
    for m in range(1, limit + 1):
        alive = np.append(alive * (1 - target), 0.0) + np.insert(alive * target, 0, 0.0)
        extra = np.arange(m + 1)
        hit = log_e(w0 + extra, l0 + m - extra) >= LOG_20
        crossed += alive[hit].sum()
        alive[hit] = 0.0
        if crossed >= power:
            return m
    return None


def main(path: str) -> dict:
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    votes: dict[int, list[str]] = defaultdict(list)
    for r in rows:
        votes[int(r["position"])].append(r["preferred"])
    prompts = sorted(votes)
    means = {p: float(np.mean([VALUE[v] for v in votes[p]])) for p in prompts}

    def kind(p: int) -> str:
        if means[p] != 0.5:
            return "won" if means[p] > 0.5 else "lost"
        return "both_bad" if 2 * votes[p].count("both_bad") >= len(votes[p]) else "tied"

    kinds = [kind(p) for p in prompts]
    w, lost = kinds.count("won"), kinds.count("lost")
    closed = rows[0]["rating_closed"] == "1"
    entered = {int(r["position"]): float(r["entered_value"]) for r in rows if r["entered_e_value"] == "1"}
    if closed:
        entered = {p: entered.get(p, means[p]) for p in prompts}
    ew, el = sum(v > 0.5 for v in entered.values()), sum(v < 0.5 for v in entered.values())
    score_values = np.array([means[p] for p in prompts])
    score_ci = None
    if len(score_values) > 1 and not np.all(score_values == score_values[0]):
        ci = bootstrap((score_values,), np.mean, n_resamples=2000, method="percentile",
                       rng=np.random.default_rng(0)).confidence_interval
        score_ci = [float(ci.low), float(ci.high)]

    criteria: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        scores = json.loads(r["scores_json"])
        for c in set(scores.get("base", {})) & set(scores.get("tuned", {})):
            criteria[c][int(r["position"])].append(scores["tuned"][c] - scores["base"][c])
    per_criterion = {}
    for c, by_prompt in sorted(criteria.items()):
        d = [float(np.mean(v)) for _, v in sorted(by_prompt.items())]
        p = float(wilcoxon(d).pvalue) if any(x != 0 for x in d) else None
        per_criterion[c] = {"n_prompts": len(d), "difference": float(np.mean(d)), "wilcoxon_p": p}
    tested = [c for c in per_criterion if per_criterion[c]["wilcoxon_p"] is not None]
    if tested:
        for c, adj in zip(tested, multipletests([per_criterion[c]["wilcoxon_p"] for c in tested], method="holm")[1]):
            per_criterion[c]["wilcoxon_p_holm"] = float(adj)

    return {"prompts": {"won": w, "lost": lost, "tied": kinds.count("tied"), "both_bad": kinds.count("both_bad")},
            "votes": len([r for r in rows if r["rater"] != "(identical answers)"]),
            "win_rate": w / (w + lost) if w + lost else None,
            "wilson": list(proportion_confint(w, w + lost, method="wilson")) if w + lost else None,
            "sign_test_p": float(binomtest(w, w + lost).pvalue) if w + lost else None,
            "score": float(score_values.mean()) if len(score_values) else None, "score_ci": score_ci,
            "entered": len(entered), "entered_wins": ew, "entered_losses": el,
            "log10_e_value": float(log_e(ew, el)) / math.log(10), "significant": bool(log_e(ew, el) >= LOG_20),
            "confidence_sequence": list(confidence_sequence(ew, el)),
            "prompts_more_needed": needed(ew, el), "raters_per_pair": int(rows[0]["raters_per_pair"]),
            "per_criterion": per_criterion, "agreement": agreement(rows)}


def agreement(rows: list[dict]) -> dict:
    """Krippendorff's α over calibration prompts with two or more votes; Cohen's κ (two raters,
    by hand: (po − pe) / (1 − pe)) on the prompts both rated."""
    import krippendorff

    cats = ["tuned", "base", "tie", "both_bad"]
    table: dict[int, dict[str, str]] = defaultdict(dict)
    for r in rows:
        if r["calibration"] == "1":
            table[int(r["position"])][r["rater"]] = r["preferred"]
    raters = sorted({x for v in table.values() for x in v})
    shared = [v for _, v in sorted(table.items()) if len(v) >= 2]
    out: dict = {"raters": raters, "prompts_with_two_votes": len(shared)}
    if len(raters) < 2 or len(shared) < 2:
        return out
    data = np.array([[cats.index(v[r]) if r in v else np.nan for v in shared] for r in raters])
    if len(set(data[~np.isnan(data)])) > 1:
        out["krippendorff_alpha"] = float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    both = [(v[raters[0]], v[raters[1]]) for v in shared if len(raters) == 2]
    if both:
        po = np.mean([a == b for a, b in both])
        pe = sum(np.mean([a == c for a, _ in both]) * np.mean([b == c for _, b in both]) for c in cats)
        if pe < 1:
            out["cohens_kappa"] = float((po - pe) / (1 - pe))
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1]), indent=2, allow_nan=False))
