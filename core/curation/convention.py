"""A dataset's output convention: inferred from its answers, said in plain words, compiled to a check.

The user never writes a regex (issue 24): the studio reads the ready training answers and finds the
structure they share — the same labelled lines in the same order ("Category: …"), a closed set of
values for a label, a length range for free lines — and states it ("Answers have 4 lines: Category
(Billing, Technical), Priority (P1–P3), Summary, Next step"). The author accepts or edits it on the
dataset; a typed regular expression stays an expert option and wins when set. The compiled pattern
is what the behaviour probe and the summary's automatic checks match answers against. Answers with no
shared structure have no pattern: the probe compares them with their references (chrF) instead.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

# "Label: value" — a label is a short name starting with a letter (no URLs: "http://" has no space
# after the colon, and a label may not contain "/" followed by "/").
LABELLED = re.compile(r"^([^\W\d_][\w &'()/-]{0,29}?)[ \t]*:[ \t]*(.*)$")
SHARE = 0.9            # a structure counts when at least this share of the answers follows it
MIN_ANSWERS = 5        # fewer answers say nothing about a house format
MAX_VALUES = 12        # a label with more distinct values than this is free text
VALUE_WORDS = 4        # closed-set values are short ("Billing", "Same day"), not sentences


def convention_ok(pattern: str, text: str) -> bool:
    """True when the whole answer (stripped) matches the dataset's convention pattern."""
    return bool(pattern) and re.fullmatch(pattern, text.strip()) is not None


@dataclass(frozen=True)
class Line:
    """One labelled line: its label, the values it may take (empty: free text) and its length."""
    label: str
    values: tuple[str, ...] = ()
    min_chars: int = 1
    max_chars: int = 300

    def describe(self) -> str:
        if self.values:
            return f"{self.label} ({_value_words(self.values)})"
        return f"{self.label} ({self.min_chars}–{self.max_chars} characters)"

    def regex(self) -> str:
        if self.values:
            value = "(?:" + "|".join(re.escape(v) for v in sorted(self.values, key=len, reverse=True)) + ")"
        else:
            value = f"[^\\n]{{{self.min_chars},{self.max_chars}}}"
        return re.escape(self.label) + "[ \\t]*:[ \\t]*" + value + "[ \\t]*"


@dataclass(frozen=True)
class Convention:
    """What the answers share. No lines: free text (only a length range, no pattern)."""
    lines: tuple[Line, ...] = ()
    free_tail: bool = False        # semi-structured: the labelled lines, then free text
    min_words: int = 0             # the whole answer's (free text) or the tail's (semi-structured) length
    max_words: int = 0
    answers: int = 0               # how many answers it was inferred from
    following: int = 0             # how many of them follow it
    tail_chars: tuple[int, int] = field(default=(1, 2000))

    @property
    def structured(self) -> bool:
        return bool(self.lines)

    def describe(self) -> str:
        """The convention in plain words, as the author sees it."""
        if not self.answers and not self.lines:
            return "No answers to infer a convention from yet."
        words = f"{self.min_words}–{self.max_words} words"
        if not self.lines:
            return (f"Free text ({words}); no shared structure, so held-out answers are compared with their "
                    "reference answers (chrF).")
        n = len(self.lines)
        parts = ", ".join(line.describe() for line in self.lines)
        if self.free_tail:
            head = f"Answers start with {n} line{'s' if n > 1 else ''}: {parts}; then free text ({words})"
        else:
            head = f"Answers have {n} line{'s' if n > 1 else ''}: {parts}"
        if self.answers:
            head += f". {self.following} of {self.answers} training answers follow it"
        return head + "."

    def regex(self) -> str:
        """The pattern the probe and the summary match whole answers against ('' for free text)."""
        if not self.lines:
            return ""
        body = "\\s*\\n\\s*".join(line.regex() for line in self.lines)
        if self.free_tail:
            low, high = self.tail_chars
            body += f"(?:\\s*\\n(?s:.){{{low},{high}}})?"
        return "^" + body + "$"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Convention:
        """Parse a stored convention; a ValueError names what is wrong."""
        try:
            data: dict[str, Any] = json.loads(text)
            lines = tuple(Line(str(d["label"]), tuple(str(v) for v in d.get("values", ())),
                               int(d.get("min_chars", 1)), int(d.get("max_chars", 300)))
                          for d in data.get("lines", []))
            convention = cls(lines, bool(data.get("free_tail", False)), int(data.get("min_words", 0)),
                             int(data.get("max_words", 0)), int(data.get("answers", 0)),
                             int(data.get("following", 0)), tuple(data.get("tail_chars", (1, 2000))))  # type: ignore[arg-type]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"The output convention could not be read: {exc}") from exc
        for i, line in enumerate(convention.lines, 1):
            if not line.label.strip() or "\n" in line.label:
                raise ValueError(f"Line {i} of the output convention has no label.")
            if not 0 < line.min_chars <= line.max_chars:
                raise ValueError(f"Line {i} ({line.label}): the length range must be 1 ≤ min ≤ max characters.")
            if any(not v.strip() or "\n" in v for v in line.values):
                raise ValueError(f"Line {i} ({line.label}): an allowed value is empty or spans lines.")
        return convention


def _value_words(values: tuple[str, ...]) -> str:
    """'P1–P3' for a run of numbered values with one prefix, else the values listed."""
    numbered = [re.fullmatch(r"(\D*?)(\d+)", v) for v in values]
    if len(values) >= 3 and all(numbered):
        prefixes = {m.group(1) for m in numbered if m}
        numbers = sorted(int(m.group(2)) for m in numbered if m)
        if len(prefixes) == 1 and numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            prefix = prefixes.pop()
            return f"{prefix}{numbers[0]}–{prefix}{numbers[-1]}"
    return ", ".join(values)


def _parse(answer: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The answer's leading labelled lines (label, value) and the lines after them."""
    lines = [line.strip() for line in answer.strip().splitlines() if line.strip()]
    labelled: list[tuple[str, str]] = []
    for i, line in enumerate(lines):
        match = LABELLED.match(line)
        if match is None or "//" in match.group(2)[:2]:
            return labelled, lines[i:]
        labelled.append((match.group(1).strip(), match.group(2).strip()))
    return labelled, []


def _line_rule(label: str, values: list[str], answers: int) -> Line:
    distinct = Counter(values)
    short = all(len(v.split()) <= VALUE_WORDS for v in distinct)
    # A closed set: few distinct short values, repeated (a label whose values are mostly unique, like
    # a summary, is free text however short its values are).
    if short and len(distinct) <= MAX_VALUES and len(distinct) <= max(3, answers // 2) and len(distinct) < answers:
        return Line(label, tuple(sorted(distinct, key=lambda v: (-distinct[v], v))))
    lengths = [len(v) for v in values]
    # Generous bounds: the training answers show the typical range, not its hard limits.
    return Line(label, (), max(1, min(lengths) // 2), max(lengths) * 2)


def infer(answers: list[str]) -> Convention:
    """The convention the answers share: all labelled lines (structured), a labelled head then free
    text (semi-structured), or free text with a word range."""
    answers = [a for a in answers if a.strip()]
    n = len(answers)
    if n == 0:
        return Convention()
    words = sorted(len(a.split()) for a in answers)
    parsed = [_parse(a) for a in answers]
    if n >= MIN_ANSWERS:
        # Structured: one sequence of labels, every line labelled, shared by most answers.
        sequences = Counter(tuple(label for label, _ in labelled) for labelled, rest in parsed if not rest)
        if sequences:
            labels, count = sequences.most_common(1)[0]
            if labels and count >= SHARE * n:
                rows = [labelled for labelled, rest in parsed
                        if not rest and tuple(label for label, _ in labelled) == labels]
                lines = tuple(_line_rule(label, [r[i][1] for r in rows], len(rows)) for i, label in enumerate(labels))
                return Convention(lines, False, words[0], words[-1], n, count)
        # Semi-structured: the longest labelled head most answers share, then anything.
        for size in range(max((len(labelled) for labelled, _ in parsed), default=0), 0, -1):
            heads = Counter(tuple(label for label, _ in labelled[:size]) for labelled, _ in parsed
                            if len(labelled) >= size)
            if not heads:
                continue
            labels, count = heads.most_common(1)[0]
            if count >= SHARE * n:
                sharing = [(labelled, rest) for labelled, rest in parsed
                           if tuple(label for label, _ in labelled[:size]) == labels]
                lines = tuple(_line_rule(label, [r[0][i][1] for r in sharing], len(sharing))
                              for i, label in enumerate(labels))
                tails = ["\n".join([f"{lb}: {v}" for lb, v in labelled[size:]] + rest) for labelled, rest in sharing]
                tail_words = sorted(len(t.split()) for t in tails)
                tail_chars = sorted(len(t) for t in tails)
                return Convention(lines, True, tail_words[0], tail_words[-1], n, count,
                                  (max(1, tail_chars[0] // 2), max(2, math.ceil(tail_chars[-1] * 2))))
    return Convention((), False, words[0], words[-1], n, 0)


@dataclass(frozen=True)
class ConventionCheck:
    """The pattern answers are judged by, in plain words, and where it came from."""
    pattern: str
    description: str
    source: str  # "expert regex", "accepted by an author" or "inferred from the training answers"
    convention: Convention | None = None


def check_for(convention_regex: str, convention_json: str, train_answers: list[str]) -> ConventionCheck:
    """The one rule for which convention judges a dataset's answers: the expert's regex when typed,
    else the convention an author accepted, else the one inferred from these training answers."""
    if convention_regex:
        return ConventionCheck(convention_regex, f"the regular expression {convention_regex}", "expert regex")
    if convention_json:
        accepted = Convention.from_json(convention_json)
        return ConventionCheck(accepted.regex(), accepted.describe(), "accepted by an author", accepted)
    inferred = infer(train_answers)
    return ConventionCheck(inferred.regex(), inferred.describe(), "inferred from the training answers", inferred)


def closed_labels(check: ConventionCheck, train_answers: list[str]) -> tuple[str, ...]:
    """The labels with a closed value set (Category, Priority, ...): the ones an answer can get right
    or wrong against its reference answer. An expert regex says nothing about them, so they are read
    from the convention inferred from the training answers."""
    shape = check.convention if check.convention is not None else infer(train_answers)
    return tuple(line.label for line in shape.lines if line.values)


def labelled_values(text: str, labels: tuple[str, ...]) -> dict[str, str]:
    """The first value of each of `labels` on a line of its own ("Label: value"), labels compared
    case-insensitively. Read against the convention's own labels, so a label the generic parser
    would not take ("Refund due?", a long one) still counts, and the lines after it too."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        for label in labels:
            if label not in found and stripped[:len(label)].casefold() == label.casefold():
                rest = stripped[len(label):].lstrip(" \t")
                if rest.startswith(":"):
                    found[label] = rest[1:].strip()
                    break
    return found


def label_agreement(labels: tuple[str, ...], answers: list[str], references: list[str]) -> dict[str, tuple[int, int]]:
    """Per closed-set label: (answers whose value equals their reference's, references with the label).
    The first occurrence of a label counts on both sides; values compare case-insensitively; an answer
    without the label (or cut short) disagrees."""
    counts = {label: [0, 0] for label in labels}
    for answer, reference in zip(answers, references):
        given = labelled_values(answer, labels)
        for label, value in labelled_values(reference, labels).items():
            counts[label][1] += 1
            counts[label][0] += label in given and given[label].casefold() == value.casefold()
    return {label: (agree, total) for label, (agree, total) in counts.items() if total}


def agreement_share(agreement: dict[str, tuple[int, int]]) -> float | None:
    """All closed-set values that equal the reference's, as one share (None: nothing to compare)."""
    total = sum(t for _, t in agreement.values())
    return sum(a for a, _ in agreement.values()) / total if total else None


def answers_of(conversations: list[list[dict[str, Any]]]) -> list[str]:
    """The last assistant answer of each conversation (what the convention describes)."""
    out = []
    for messages in conversations:
        answers = [m["content"] for m in messages if m.get("role") == "assistant"]
        if answers:
            out.append(str(answers[-1]))
    return out


def ready_training_answers(db: Any, dataset_id: int) -> list[str]:
    """The current ready training answers of a dataset (what the Author page infers from)."""
    from core.curation import examples

    return answers_of([e.messages for e in examples.all_examples(db, dataset_id)
                       if e.status == "ready" and e.split == "train"])


def edited(convention: Convention, rows: list[dict[str, Any]]) -> Convention:
    """The convention with the author's edits: per line its label, allowed values (comma separated;
    empty means free text) and length range. Raises ValueError naming the row that is wrong."""
    lines = []
    for i, row in enumerate(rows, 1):
        label = str(row.get("label") or "").strip()
        if not label:
            continue  # an emptied row removes the line
        values = tuple(v.strip() for v in str(row.get("allowed values") or "").split(",") if v.strip())
        try:
            low, high = int(row.get("min characters") or 1), int(row.get("max characters") or 300)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Row {i} ({label}): the length range must be whole numbers.") from exc
        lines.append(Line(label, values, low, high))
    result = Convention(tuple(lines), convention.free_tail and bool(lines), convention.min_words,
                        convention.max_words, convention.answers, convention.following, convention.tail_chars)
    return Convention.from_json(result.to_json())  # the same checks as a stored one


def rows_of(convention: Convention) -> list[dict[str, Any]]:
    """The convention's lines as editable rows (the inverse of `edited`)."""
    return [{"label": line.label, "allowed values": ", ".join(line.values),
             "min characters": line.min_chars, "max characters": line.max_chars} for line in convention.lines]
