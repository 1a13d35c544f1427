"""How numbers read in every report (Results, Markdown, HTML): one place, so they never disagree.

Rounding never crosses a decision threshold: an e-value of 19.9946 never reads "20.0", a p-value
of 0.0496 never reads "0.050", and an interval is rounded outwards, so it never reads as excluding
a value it contains (issue 26)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from core.platform.text_safety import markdown_cell
from core.reports import stat_tests
from core.reports.agreement import INTERVAL_MIN_PROMPTS

ALPHA = stat_tests.ALPHA
E_VALUE_THRESHOLD = stat_tests.E_VALUE_THRESHOLD
E_VALUE_DISPLAY_CAP = 6  # log10: larger e-values read "> 10^6"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def ci(interval: Any) -> str:
    """A 95 % interval of a share, rounded outwards to a tenth of a percent."""
    if not interval:
        return "–"
    low, high = math.floor(interval[0] * 1000 + 1e-9) / 1000, math.ceil(interval[1] * 1000 - 1e-9) / 1000
    return f"{low:.1%} – {high:.1%}"


def _keeps_side(value: float, threshold: float, decimals: int) -> str:
    """`value` to `decimals` places, more places if fewer would put it on the threshold's other
    side or on the threshold itself."""
    for places in range(decimals, decimals + 8):
        text = f"{value:.{places}f}"
        if value == threshold or (float(text) < threshold) == (value < threshold) and float(text) != threshold:
            return text
    return f"{value:.{decimals + 8}f}"


def p_value(value: float | None) -> str:
    """A p-value to sensible precision."""
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else _keeps_side(value, ALPHA, 3)


def e_value(log10_e: float | None) -> str:
    """An e-value from its log10 (finite at any count): one decimal, more near 20; "> 10^6" above."""
    if log10_e is None:
        return "–"
    if log10_e > E_VALUE_DISPLAY_CAP:
        return f"> 10^{E_VALUE_DISPLAY_CAP}"
    value = 10 ** log10_e
    return _keeps_side(value, E_VALUE_THRESHOLD, 0 if value >= 100 else 1)


def number(value: float | None, fmt: str = ".2f") -> str:
    return "–" if value is None else format(value, fmt)


def seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


# ----------------------------------------------------------------------------- report sentences
# The statistics' wording, shared by Results, Markdown and HTML so they say the same.

def _kappa_text(name: str, value: float, interval: Any) -> str:
    ci = (f"bootstrap 95 % CI {interval[0]:.2f} – {interval[1]:.2f}" if interval
          else f"no interval: fewer than {INTERVAL_MIN_PROMPTS} prompts or too few informative resamples")
    return f"{name} {value:.2f} ({ci})."


def agreement_lines(a: dict[str, Any], name: Callable[[str], str] = markdown_cell) -> list[str]:
    """Agreement in sentences, the same in Results, Markdown and HTML (names escaped for Markdown)."""
    if a.get("not_computable"):
        return [f"Not computable: {a['not_computable']}."]
    lines = [f"On {a['calibration_pairs_rated_by_two']} calibration prompts with votes from two or more of "
             f"{', '.join(name(r) for r in a['raters'])}: raw agreement {pct(a.get('percent_agreement'))}.",
             _kappa_text("Krippendorff's α", a["krippendorff_alpha"], a.get("krippendorff_alpha_ci"))]
    for key, label in (("cohens_kappa", "Cohen's κ"), ("fleiss_kappa", "Fleiss' κ")):
        if key in a:
            lines.append(f"On the {a['calibration_pairs_rated_by_all']} prompts rated by all: "
                         + _kappa_text(label, a[key], a.get(f"{key}_ci")))
    if a.get("kappa_not_computable"):
        lines.append(f"κ: {a['kappa_not_computable']}.")
    return lines


def statistics_lines(summary: Any) -> list[str]:
    """The headline numbers, each with its unit, N and validity (Markdown; HTML shows the same)."""
    po, o = summary.prompt_outcomes, summary.outcomes
    more = summary.prompts_more_needed
    return [
        f"- Anytime-valid test: e-value {e_value(summary.log10_e_value)} over the "
        f"{summary.entered_wins + summary.entered_losses} decisive prompts that entered it ({summary.complete_prompts} "
        f"entered, k = {summary.raters_per_pair}); {'significant' if summary.significant else 'not significant'} "
        "(threshold 20, α = 5 %)",
        f"- Win rate, anytime-valid 95 % confidence sequence over the same prompts: {ci(summary.win_rate_cs)}",
        f"- Win rate over all decisive prompts: {pct(summary.win_rate)} (N = {po.wins + po.losses} prompts; "
        f"fixed-n Wilson 95 % CI {ci(summary.win_rate_ci)}, valid only at a planned end)",
        f"- Sign test over decisive prompts (valid only at a planned end): p = {p_value(summary.sign_test_p)}",
        f"- Score: {pct(summary.score)} (bootstrap 95 % CI {ci(summary.score_ci)}, "
        f"N = {po.total} prompts)",
        f"- Prompts neither model got right (both bad): {po.both_bad} of {po.total}",
        f"- Votes: tie rate {pct(summary.tie_rate)}, both-bad rate {pct(summary.both_bad_rate)} "
        f"(N = {o.total} votes)",
        f"- Decisive prompts for 80 % power at a 60 % win rate: {summary.prompts_needed_for_60} with the anytime-valid "
        f"test ({'more than ' + str(stat_tests.POWER_LIMIT) if more is None else more} more from those in hand); "
        f"{summary.fixed_n_needed_for_60} for a sign test fixed in advance and looked at once",
        f"- Position bias, all raters pooled: left picked on {pct(summary.position_bias.get('left_pick_rate'))} "
        f"of {summary.position_bias.get('side_votes', 0)} side votes, p = {p_value(summary.position_bias.get('p'))}"]


def criterion_cells(c: dict[str, Any]) -> list[str]:
    """One per-criterion row as text: means, the mean difference with its t interval, Wilcoxon p raw
    and Holm-adjusted, n in prompts."""
    ci = c["difference_ci"]
    return [number(c["base_mean"]), number(c["tuned_mean"]),
            f"{number(c['difference'], '+.2f')} ({number(ci[0] if ci else None, '+.2f')} to "
            f"{number(ci[1] if ci else None, '+.2f')})",
            p_value(c["wilcoxon_p"]), p_value(c.get("wilcoxon_p_holm")), str(c["n_prompts"])]


def criterion_header(names: dict[str, str]) -> list[str]:
    """The per-criterion table's columns, the two models by their names (summary.model_names)."""
    return ["criterion", names["base"], names["tuned"], "mean difference (t 95 % CI)", "Wilcoxon p (median)",
            "Holm-adjusted p", "n prompts"]


def outcome_header(names: dict[str, str]) -> list[str]:
    """The outcome table's columns (prompts and votes), the two models by their names."""
    return ["unit", f"{names['tuned']} better", f"{names['base']} better", "tied (automatic)", "both bad", "total"]


def sentence_start(text: str) -> str:
    """Text that opens a sentence: its first letter upper case ("the tuned model" reads "The tuned model")."""
    return text[:1].upper() + text[1:]


def capital(model: str) -> str:
    """A model's sentence name as a heading: "the base model" reads "Base model", "run 9" "Run 9"."""
    model = model.removeprefix("the ")
    return model[:1].upper() + model[1:]


def vote_name(vote: str, names: dict[str, str]) -> str:
    """A vote as the reports show it: the preferred model's name, or "tie" / "both bad"."""
    return names[vote] if vote in ("base", "tuned") else vote.replace("_", " ")


def question(names: dict[str, str]) -> str:
    """What the evaluation asks, with the two models' names."""
    if names["base_model"] == "the base model":
        return "does the tuned model answer better?"
    return f"does {names['tuned_model']} answer better than {names['base_model']}?"


def criterion_note(summary: Any) -> str:
    return (f"Each prompt's scores averaged over its raters first. Criteria tested: {summary.criteria_tested}; "
            "Holm-adjusted p-values allow for that number. The t interval is about the mean difference, the "
            "Wilcoxon test about the median: they can disagree.")


# Against the base model the sides keep their familiar names; "short" names head table columns,
# the "model" names stand in sentences.
BASE_NAMES = {"tuned": "tuned", "base": "base", "tuned_model": "the tuned model", "base_model": "the base model"}


def checks_table(checks: dict[str, Any], names: dict[str, str] = BASE_NAMES) -> list[dict[str, str]]:
    """The automatic checks in plain words: what each measures, base vs tuned (keys "base" and
    "tuned"; the meanings name the models by `names`)."""
    n = checks.get("pairs", 0)
    rows: list[dict[str, str]] = []

    def add(check: str, base: Any, tuned: Any, meaning: str) -> None:
        rows.append({"check": check, "base": str(base), "tuned": str(tuned), "what it tells you": meaning})

    if "convention_base" in checks:
        add("Follows the output convention", f"{checks['convention_base']}/{n}", f"{checks['convention_tuned']}/{n}",
            "answers following the dataset's convention: " + checks.get("convention_described", "its output pattern"))
    for label, counts in checks.get("labels_agree", {}).items():
        add(f"{label} matches the reference", f"{counts['base']}/{counts['of']}", f"{counts['tuned']}/{counts['of']}",
            f"answers whose {label} is the one in the held-out reference answer (its closed set of values)")
    if "glossary_terms_base" in checks:
        add("Glossary terms used", checks["glossary_terms_base"], checks["glossary_terms_tuned"],
            "how often the dataset's own terms appear in the answers")
    if "mean_words_base" in checks:
        add("Mean length (words)", f"{checks['mean_words_base']:.0f}", f"{checks['mean_words_tuned']:.0f}",
            f"the reference answers average {checks['mean_words_reference']:.0f} words")
    if "heldout_loss_base" in checks:
        add("Held-out loss", f"{checks['heldout_loss_base']:.3f}", f"{checks['heldout_loss_tuned']:.3f}",
            "lower: the model finds your reference answers more likely (it learned your style)")
    if "general_loss_base" in checks:
        add("Forgetting probe (general-text loss)", f"{checks['general_loss_base']:.3f}",
            f"{checks['general_loss_tuned']:.3f}",
            f"loss on ordinary English the adapter never saw; much higher for {names['tuned']} means it damaged "
            "general language ability (catastrophic forgetting)")
    return rows
