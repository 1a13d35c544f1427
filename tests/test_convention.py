"""Convention inference on hand-written answer sets (structured, semi-structured, free text) and on
data it was not designed on (the demo), the plain-words statement, the compiled check, and edits."""

import json

import pytest

from core.curation import convention, datasets, demo
from core.curation.convention import Convention, convention_ok, infer
from core.platform.paths import REPO_ROOT

TICKETS = [
    "Category: Billing\nPriority: P2\nSummary: Customer was charged twice for the March invoice.\nNext step: Refund the duplicate charge.",
    "Category: Technical\nPriority: P1\nSummary: The dashboard returns a 500 error for every user.\nNext step: Page the on-call engineer.",
    "Category: Account\nPriority: P3\nSummary: Customer asks how to rename the workspace.\nNext step: Send the rename guide.",
    "Category: Security\nPriority: P1\nSummary: Customer reports a login from an unknown country.\nNext step: Lock the account and reset tokens.",
    "Category: Billing\nPriority: P3\nSummary: Customer wants invoices sent to a second address.\nNext step: Add the billing contact.",
    "Category: Technical\nPriority: P2\nSummary: CSV export drops the last column since Tuesday.\nNext step: File a bug with the sample file.",
    "Category: Account\nPriority: P2\nSummary: Customer cannot add a fifth seat to the team plan.\nNext step: Raise the seat limit.",
    "Category: Security\nPriority: P2\nSummary: Customer asks whether we support hardware keys.\nNext step: Send the two-factor setup page.",
    "Category: Billing\nPriority: P1\nSummary: Card declined and the workspace was suspended.\nNext step: Lift the suspension for seven days.",
]

REVIEWS = [  # semi-structured: a verdict line, then free prose of varying length
    "Verdict: Approve\nThe change is small and well tested; merge after the changelog entry.",
    "Verdict: Request changes\nThe migration edits an earlier one. Append a new migration instead,\nand add a test that applies it twice.",
    "Verdict: Approve\nLooks good.",
    "Verdict: Comment\nI am not sure the cache key covers renames; can you add a test for that case?",
    "Verdict: Request changes\nThe except clause swallows every error. Catch the one you expect.",
    "Verdict: Approve\nNice cleanup of the page; the helper reads much better now.",
]

PROSE = [
    "Thanks for writing in. The parcel left our warehouse on Monday and should reach you by Friday.",
    "We are sorry the colour was not what you expected. You can return it within 30 days for a refund.",
    "Our store opens at nine on weekdays and at ten on Saturdays; we are closed on Sundays.",
    "The warranty covers manufacturing faults for two years. Wear and tear is not covered, I am afraid.",
    "Yes, gift cards never expire and can be used online and in all our shops.",
    "I have passed your note to the team that built the feature, and they will look at it this week.",
]


def test_structured_answers_give_lines_value_sets_and_a_range_in_plain_words():
    found = infer(TICKETS)
    text = found.describe()
    assert text.startswith("Answers have 4 lines: Category (Billing, Account, Security, Technical), Priority (P1–P3), "
                           "Summary (")
    assert "Next step (" in text and text.endswith("9 of 9 training answers follow it.")
    assert [line.label for line in found.lines] == ["Category", "Priority", "Summary", "Next step"]
    assert found.lines[1].values == ("P2", "P1", "P3")
    assert found.lines[2].values == () and found.lines[3].values == ()
    pattern = found.regex()
    ok = "Category: Technical\nPriority: P3\nSummary: Customer asks about API rate limits.\nNext step: Send the limits page."
    assert convention_ok(pattern, ok)
    assert not convention_ok(pattern, ok.replace("Category: Technical", "Category: Business"))  # invented value
    assert not convention_ok(pattern, ok.replace("Priority: P3", "Priority: P4"))
    assert not convention_ok(pattern, "\n".join(ok.splitlines()[:3]))                      # a line missing
    assert not convention_ok(pattern, "\n".join(reversed(ok.splitlines())))                  # wrong order


def test_one_answer_in_ten_off_format_still_gives_the_structure_and_says_so():
    found = infer(TICKETS + ["Sorry, I do not know."])
    assert found.structured and "9 of 10 training answers follow it" in found.describe()


def test_semi_structured_answers_give_a_labelled_head_then_free_text():
    found = infer(REVIEWS)
    assert found.free_tail and [line.label for line in found.lines] == ["Verdict"]
    assert found.describe().startswith("Answers start with 1 line: Verdict (Approve, Request changes, Comment); "
                                       "then free text (2–")
    pattern = found.regex()
    assert convention_ok(pattern, "Verdict: Comment\nWhy does the worker fork twice?")
    assert not convention_ok(pattern, "Verdict: Maybe\nWhy does the worker fork twice?")
    assert not convention_ok(pattern, "Why does the worker fork twice?")


def test_free_text_has_no_pattern_only_a_length_range():
    found = infer(PROSE)
    assert not found.structured and found.regex() == ""
    assert found.describe().startswith("Free text (15–20 words)")  # counted by hand
    assert "chrF" in found.describe()


def test_on_the_demo_data_it_was_not_designed_on():
    def answers(name):
        lines = (REPO_ROOT / "data" / "demo" / name).read_text().splitlines()
        return convention.answers_of([json.loads(line)["messages"] for line in lines if line.strip()])

    found = infer(answers("train.jsonl"))
    assert found.lines[0].label == "Category"
    assert set(found.lines[0].values) == {"Billing", "Shipping", "Returns", "Product", "Account"}  # the guidelines' set
    assert found.lines[1].describe() == "Priority (P1–P3)"
    assert [line.label for line in found.lines] == ["Category", "Priority", "Summary", "Reply"]
    heldout = answers("heldout.jsonl")
    # Every held-out reference follows the inferred convention, as it follows the hand-written regex.
    assert sum(convention_ok(found.regex(), a) for a in heldout) == 20
    assert sum(convention_ok(demo.CONVENTION, a) for a in heldout) == 20


def test_too_few_answers_say_nothing_about_a_format():
    assert not infer(TICKETS[:4]).structured
    assert infer([]).describe() == "No answers to infer a convention from yet."


def test_the_expert_regex_wins_then_the_accepted_convention_then_inference():
    accepted = convention.edited(infer(TICKETS), [{"label": "Category", "allowed values": "Billing, Refunds"}])
    assert convention.check_for(r"^x$", accepted.to_json(), TICKETS).source == "expert regex"
    chosen = convention.check_for("", accepted.to_json(), TICKETS)
    assert chosen.source == "accepted by an author" and chosen.description.startswith("Answers have 1 line: Category (Billing, Refunds)")
    assert convention_ok(chosen.pattern, "Category: Refunds") and not convention_ok(chosen.pattern, "Category: Technical")
    assert convention.check_for("", "", TICKETS).source == "inferred from the training answers"


def test_editing_round_trips_and_bad_rows_are_named():
    found = infer(TICKETS)
    assert convention.edited(found, convention.rows_of(found)).regex() == found.regex()
    with pytest.raises(ValueError, match="Row 2 \\(Priority\\): the length range"):
        convention.edited(found, [{"label": "Category"}, {"label": "Priority", "min characters": "many"}])
    with pytest.raises(ValueError, match="Line 1 \\(Summary\\): the length range"):
        convention.edited(found, [{"label": "Summary", "min characters": 50, "max characters": 10}])
    with pytest.raises(ValueError, match="could not be read"):
        Convention.from_json("{not json")


def test_an_accepted_convention_is_stored_on_the_dataset_and_checked(db):
    dataset = datasets.create_dataset(db, "tickets")
    stored = datasets.update_dataset(db, dataset.id, convention_json=infer(TICKETS).to_json())
    assert Convention.from_json(stored.convention_json).regex() == infer(TICKETS).regex()
    with pytest.raises(datasets.DatasetError, match="could not be read"):
        datasets.update_dataset(db, dataset.id, convention_json="[")
    assert datasets.get_dataset(db, dataset.id).convention_json == stored.convention_json  # nothing lost


def test_label_agreement_counts_closed_values_that_equal_the_reference_on_hand_values():
    labels = convention.closed_labels(convention.check_for("", "", TICKETS), TICKETS)
    assert labels == ("Category", "Priority")  # Summary and Next step are free text
    references = TICKETS[:3]
    answers = [
        TICKETS[0],                                                   # both right
        "category: technical\nPriority: P3\nSummary: other words",   # Category right (case), Priority wrong
        "Category: Billing",                                          # cut short: Category wrong, Priority missing
    ]
    agreement = convention.label_agreement(labels, answers, references)
    assert agreement == {"Category": (2, 3), "Priority": (1, 3)}
    assert convention.agreement_share(agreement) == 3 / 6
    assert convention.agreement_share(convention.label_agreement(labels, PROSE, PROSE)) is None  # nothing to compare


def test_an_expert_regex_still_gets_its_closed_labels_from_the_training_answers():
    check = convention.check_for(r"^Category: \w+\nPriority: P\d(?s:.*)$", "", TICKETS)
    assert check.convention is None and convention.closed_labels(check, TICKETS) == ("Category", "Priority")


def test_label_agreement_reads_the_conventions_own_labels_first_occurrence_and_any_case():
    """A hostile review's cases: a label the generic parser would not take ('Refund due?', a long one)
    and the lines after it still count; a repeated label counts its first value on both sides; a
    reference written in lower case still counts."""
    labels = ("Category", "Refund due?", "Escalated to the second-line team", "Priority")
    text = "Category: Billing\nRefund due?: Yes\nEscalated to the second-line team: No\nPriority: P1"
    assert convention.label_agreement(labels, [text], [text]) == {label: (1, 1) for label in labels}
    repeated = "Category: Billing\nPriority: P1\nCategory: Technical\nPriority: P3"
    assert convention.label_agreement(("Category", "Priority"), [repeated], ["Category: Billing\nCategory: Billing\nPriority: P1"]) \
        == {"Category": (1, 1), "Priority": (1, 1)}
    assert convention.label_agreement(("Category",), ["Category: billing"], ["category: Billing"]) == {"Category": (1, 1)}
    assert convention.label_agreement(("Priority",), ["Priority level: P1"], ["Priority: P1"]) == {"Priority": (0, 1)}
