"""Two bench datasets for time to behaviour (issue 24), written for it and never typed a convention:

- `helpdesk`: a software company's support tickets (Lumen Analytics, a reporting SaaS), 90 train /
  30 held-out, answered in a four-line format: Category (Billing, Technical, Account, Security),
  Priority (P1–P3), Summary, Next step.
- `vet_clinic`: a veterinary clinic's appointment requests, 40 train / 12 held-out, a four-line
  format with a closed value set on three labels: Species (Dog, Cat, Rabbit, Bird), Urgency
  (Emergency, Same day, Routine), Service (Vaccination, Dental, Surgery consult, Check-up,
  Nutrition), then a free Note.

Generated from hand-written templates with a fixed seed, so every run sees the same examples. The
held-out examples come from templates the training examples never use (otherwise they would nearly
duplicate training examples, which the freeze gate refuses, and would measure recall, not behaviour);
every label value they need also occurs in training.
"""

from __future__ import annotations

import json
import random
from typing import Any

Messages = list[dict[str, str]]

HELPDESK_SYSTEM = "You triage support tickets for Lumen Analytics."
REPORTS = ["the weekly revenue report", "the churn dashboard", "the sales funnel chart", "the cohort table",
           "the regional map", "the marketing spend report", "the KPI overview", "the inventory report"]
NAMES = ["Priya", "Tom", "Aiko", "Marta", "Jonas", "Lea", "Omar", "Grace", "Diego", "Hana", "Felix", "Nora"]
OPENERS = ["Hi,", "Hello support,", "Good morning,", "Hey team,", "Hi there,", ""]
CLOSERS = ["Thanks.", "Thank you!", "Regards.", "Cheers.", ""]

# (category, priority, ticket, summary, next step); {report}, {n}, {amount}, {seats} are filled in.
HELPDESK: list[tuple[str, str, str, str, str]] = [
    ("Billing", "P1", "We were charged {amount} twice this month and our card is now over its limit.",
     "Customer was charged {amount} twice this month.", "Refund the duplicate charge today and confirm by e-mail."),
    ("Billing", "P2", "Our invoice INV-{n} lists {seats} seats but we only have {fewer} users.",
     "Invoice INV-{n} bills {seats} seats for {fewer} users.", "Correct the seat count and issue a credit note."),
    ("Billing", "P3", "Can we switch from monthly to yearly billing at the next renewal?",
     "Customer asks to move to yearly billing at renewal.", "Send the yearly plan terms and schedule the change."),
    ("Billing", "P3", "Where can I download the invoice INV-{n} as a PDF for our accountant?",
     "Customer needs a PDF copy of invoice INV-{n}.", "Send the invoice PDF and the billing page link."),
    ("Billing", "P2", "Our card expired and the renewal of {amount} failed. Can we pay by bank transfer?",
     "Renewal of {amount} failed on an expired card.", "Send bank transfer details and extend access by 14 days."),
    ("Technical", "P1", "{report} shows no data since this morning for all of our users.",
     "{Report} is empty for every user since this morning.", "Escalate to the on-call engineer and post a status update."),
    ("Technical", "P2", "Exporting {report} to CSV drops the last column.",
     "CSV export of {report} loses its last column.", "File a bug with the sample export and share a workaround."),
    ("Technical", "P2", "{report} takes over {n} seconds to load since the last update.",
     "{Report} loads in over {n} seconds since the update.", "Collect the workspace id and open a performance ticket."),
    ("Technical", "P3", "Is there a way to change the colours of {report}?",
     "Customer asks how to change the colours of {report}.", "Send the chart styling guide."),
    ("Technical", "P1", "The API returns error 500 for every request since {n} minutes ago.",
     "The API fails with error 500 on every request.", "Escalate to the on-call engineer and share the incident page."),
    ("Account", "P2", "We cannot add a new user; the invite button is greyed out at {seats} seats.",
     "Invites are blocked at {seats} seats.", "Raise the seat limit and ask the admin to resend the invite."),
    ("Account", "P3", "How do I rename our workspace?",
     "Customer asks how to rename the workspace.", "Send the workspace settings guide."),
    ("Account", "P2", "Our admin left the company and nobody can manage users any more.",
     "The workspace has no active admin after the admin left.", "Verify the owner by e-mail and transfer the admin role."),
    ("Account", "P3", "Can I change the e-mail address I sign in with?",
     "Customer wants to change the sign-in e-mail address.", "Send the steps to change the sign-in address."),
    ("Account", "P2", "We want to close one of our two workspaces and move {report} to the other.",
     "Customer wants to merge two workspaces and keep {report}.", "Book a migration call and export the workspace."),
    ("Security", "P1", "Someone logged into our account from another country last night.",
     "Customer reports a sign-in from an unknown country.", "Lock the account, reset sessions and call the customer."),
    ("Security", "P2", "Does Lumen support single sign-on with our identity provider?",
     "Customer asks about single sign-on with their identity provider.", "Send the SSO setup guide and the plan that includes it."),
    ("Security", "P3", "Where can we find your security and privacy documents for our audit?",
     "Customer needs security documents for an audit.", "Send the trust centre link and the data processing agreement."),
    ("Security", "P1", "A former employee still has access to {report}.",
     "A former employee can still open {report}.", "Remove the user now and send the access log."),
    ("Security", "P2", "Can we enforce two-factor sign-in for all {seats} users?",
     "Customer wants two-factor sign-in enforced for {seats} users.", "Send the steps to enforce two-factor sign-in."),
]

VET_SYSTEM = "You schedule appointment requests for Willow Creek Veterinary Clinic."
PETS = {"Dog": ["Biscuit", "Rex", "Luna", "Milo", "Bella"], "Cat": ["Mochi", "Tiger", "Cleo", "Oscar"],
        "Rabbit": ["Thumper", "Clover", "Hazel"], "Bird": ["Kiwi", "Sunny", "Pip"]}
AGES = ["8-week-old", "one-year-old", "three-year-old", "six-year-old", "twelve-year-old"]
# (urgency, service, request, note); {pet}, {name}, {age} and {kind} are filled in.
VET: list[tuple[str, str, str, str]] = [
    ("Emergency", "Surgery consult", "My {kind} {name} was hit by a car and is limping badly and bleeding.",
     "{Name} was hit by a car and is bleeding; come in now."),
    ("Emergency", "Check-up", "{name} ate chocolate an hour ago and is shaking. What do I do?",
     "{Name} ate chocolate an hour ago and is shaking; come in now."),
    ("Same day", "Check-up", "{name}, our {age} {kind}, has not eaten since yesterday.",
     "{Name} has not eaten since yesterday; see a vet today."),
    ("Same day", "Dental", "{name} is pawing at her mouth and one tooth looks broken.",
     "{Name} may have a broken tooth; book a dental slot today."),
    ("Routine", "Vaccination", "Our {age} {kind} {name} is due for the yearly vaccines.",
     "{Name} is due for yearly vaccines; book any weekday."),
    ("Routine", "Nutrition", "{name} is putting on weight. Could we talk about a diet?",
     "{Name} is gaining weight; book a diet consultation."),
    ("Routine", "Dental", "Could {name} have a teeth cleaning sometime next month?",
     "{Name} needs a routine teeth cleaning next month."),
    ("Same day", "Surgery consult", "{name}'s stitches from last week's operation have opened a little.",
     "{Name}'s surgical stitches have opened; see the surgeon today."),
    ("Routine", "Check-up", "We just adopted {name}, a {age} {kind}, and would like a first check.",
     "{Name} is newly adopted and needs a first check-up."),
    ("Emergency", "Check-up", "{name} is struggling to breathe and her gums look pale.",
     "{Name} has breathing trouble and pale gums; come in now."),
]
VET_OPENERS = ["Hello,", "Hi,", "Good afternoon,", "Dear clinic,", ""]
HELPDESK_HELDOUT = {3, 6, 11, 15, 19}  # templates only held-out examples use (one or two per category)
VET_HELDOUT = {1, 3, 8}


def _chat(system: str, user: str, answer: str) -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": user},
                         {"role": "assistant", "content": answer}]}


def helpdesk(seed: int = 24, train: int = 90, heldout: int = 30) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The helpdesk set: (train, held-out) lists of chat examples."""
    rng = random.Random(seed)
    out: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    for split, size in (("train", train), ("heldout", heldout)):
        templates = [t for i, t in enumerate(HELPDESK) if (i in HELPDESK_HELDOUT) == (split == "heldout")]
        out[split] = _helpdesk_rows(rng, templates, size, seen)
    return out["train"], out["heldout"]


def _helpdesk_rows(rng: random.Random, templates: list[tuple[str, str, str, str, str]], size: int,
                   seen: set[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while len(rows) < size:
        category, priority, ticket, summary, step = templates[len(rows) % len(templates)]
        report = rng.choice(REPORTS)
        seats = rng.choice([5, 10, 12, 20, 25, 50])
        slots = {"report": report, "Report": report[0].upper() + report[1:], "n": rng.randint(100, 9999),
                 "amount": f"${rng.choice([49, 99, 149, 299, 499])}", "seats": seats, "fewer": seats - rng.randint(1, 4)}
        user = " ".join(x for x in (rng.choice(OPENERS), ticket.format(**slots), rng.choice(CLOSERS),
                                    rng.choice(NAMES)) if x)
        user = user[0].upper() + user[1:]
        if user in seen:
            continue
        seen.add(user)
        answer = (f"Category: {category}\nPriority: {priority}\nSummary: {summary.format(**slots)}\n"
                  f"Next step: {step.format(**slots)}")
        rows.append(_chat(HELPDESK_SYSTEM, user, answer))
    rng.shuffle(rows)
    return rows


def vet_clinic(seed: int = 24, train: int = 40, heldout: int = 12) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The veterinary set: (train, held-out) lists of chat examples."""
    rng = random.Random(seed)
    out: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    for split, size in (("train", train), ("heldout", heldout)):
        templates = [t for i, t in enumerate(VET) if (i in VET_HELDOUT) == (split == "heldout")]
        out[split] = _vet_rows(rng, templates, size, seen)
    return out["train"], out["heldout"]


def _vet_rows(rng: random.Random, templates: list[tuple[str, str, str, str]], size: int,
              seen: set[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    kinds = list(PETS)
    while len(rows) < size:
        urgency, service, request, note = templates[len(rows) % len(templates)]
        species = kinds[(len(rows) // len(templates) + len(rows)) % len(kinds)]
        name = rng.choice(PETS[species])
        slots = {"name": name, "Name": name, "age": rng.choice(AGES), "kind": species.lower()}
        user = " ".join(x for x in (rng.choice(VET_OPENERS), request.format(**slots)) if x)
        user = user[0].upper() + user[1:]
        if user in seen:
            continue
        seen.add(user)
        answer = f"Species: {species}\nUrgency: {urgency}\nService: {service}\nNote: {note.format(**slots)}"
        rows.append(_chat(VET_SYSTEM, user, answer))
    rng.shuffle(rows)
    return rows


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


SETS = {"helpdesk": helpdesk, "vet-clinic": vet_clinic}
