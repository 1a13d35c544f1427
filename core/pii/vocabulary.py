"""A dataset's own vocabulary: names of products, teams and places it is about, never personal data.

Issue 16: on 120 real support tickets every PII finding was a product name taken for a person
("Analytics Pro", "MailFlow API"). A global allow list written for the demo cannot know another
team's products, so each dataset carries its own: the glossary an author keeps, plus any name its
guidelines already use. The rule is pure (no database) so the scan and the re-check after a glossary
edit apply exactly the same one.

Issue 23: the vocabulary is a suggestion, never a decision. An author could clear a real name by
adding it to the glossary, and a single word ("Doe") cleared every value holding it ("Jane Doe").
Now a term must equal the finding's whole value, and only the vocabulary an admin confirmed
(datasets.vocabulary_json) clears findings: each one is recorded as a decision with who confirmed
it and the term, and audited (core.pii.review.apply_vocabulary, core.pii.scan). What the current,
unconfirmed glossary matches is shown as a suggestion and stays open.

Only name-like findings (PERSON, LOCATION, NRP) can be vocabulary: an e-mail address, a phone or card
number is personal data whatever a glossary says, so an author cannot clear those by editing text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NAME_LIKE = frozenset({"PERSON", "LOCATION", "NRP"})
VOCABULARY_REASON = "dataset vocabulary"
SUGGESTION = "matches the dataset vocabulary; clears the gate once an admin confirms it"
VALUE_REASON = "not personal data in this dataset"
_WORD = re.compile(r"[\w&'-]+")
# spaCy often takes a leading possessive or article into a name ("My Alder", "the Basin"); these
# words alone are never a name, so they are not part of the value a term must equal.
_LEADING = frozenset({"my", "our", "your", "his", "her", "their", "its", "the", "a", "an"})


def decision_reason(term: str, confirmed_by: str) -> str:
    """The reason stored on a finding the confirmed vocabulary cleared (and shown to reviewers)."""
    return f"{VOCABULARY_REASON} ({term}), confirmed by {confirmed_by}"


def _words(text: str) -> tuple[str, ...]:
    return tuple(w.casefold() for w in _WORD.findall(text))


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    """Whether needle occurs in haystack as whole consecutive words."""
    n = len(needle)
    return n > 0 and any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


@dataclass(frozen=True)
class Vocabulary:
    glossary: tuple[str, ...] = ()
    guidelines: str = ""

    @classmethod
    def confirmed(cls, stored: dict[str, object]) -> Vocabulary:
        """The vocabulary an admin confirmed (empty when none was)."""
        glossary = stored.get("glossary") or []
        return cls(tuple(str(t) for t in glossary) if isinstance(glossary, list) else (),
                   str(stored.get("guidelines") or ""))

    def match(self, entity_type: str, value: str) -> str | None:
        """The glossary term or guideline phrase that makes this value vocabulary, else None.

        A value is vocabulary when it is a glossary term as a whole ("Analytics Pro", in any case),
        or the guidelines use the whole value as written. Part of a value never matches: the term
        "Doe" says nothing about "Jane Doe".
        """
        if entity_type not in NAME_LIKE:
            return None
        value_words = _words(value)
        while len(value_words) > 1 and value_words[0] in _LEADING:
            value_words = value_words[1:]
        if not value_words:
            return None
        for term in self.glossary:
            if _words(term) == value_words:
                return f"glossary: {term.strip()}"
        if _contains(_words(self.guidelines), value_words):
            return "named in the guidelines"
        return None
