"""The demo project seeded on first start, so the first screen is not empty."""

from __future__ import annotations

import sqlite_utils

from core.curation import datasets, importing
from core.platform.paths import REPO_ROOT

DEMO_DIR = REPO_ROOT / "data" / "demo"
DEMO_NAME = "Harbor & Pine support triage"
CONVENTION = (r"^Category: (Billing|Shipping|Returns|Product|Account)\n"
              r"Priority: P[123]\nSummary: [^\n]{10,200}\nReply: [^\n]{10,300}$")
GUIDELINES = """Every answer is exactly four lines, in this order:
Category: one of Billing, Shipping, Returns, Product, Account
Priority: P1 (customer blocked or money wrong), P2 (needs action this week), P3 (question)
Summary: one sentence, third person, naming the product and order number when given
Reply: the next step we take, starting with a verb; no greetings, no sign-off.
We ship from our Portland warehouse to the US and Canada."""
GLOSSARY = ["order", "refund", "prepaid return label", "warranty", "carrier trace", "escalate",
            # Our product lines: vocabulary of this dataset, never personal data (issue 16).
            "Ridgeline", "Tidewater", "Summit", "Cedar", "Driftwood", "Northstar", "Kestrel", "Basin",
            "Alder", "Granite", "gift", "gift card", "gift receipt", "zipper"]


def seed_demo(db: sqlite_utils.Database, actor: str = "studio") -> datasets.Dataset | None:
    """Create the demo dataset once; returns None when any dataset already exists."""
    if db.table("datasets").count:
        return None
    dataset = datasets.create_dataset(
        db, DEMO_NAME, actor=actor,
        description="Support leads teach the model our four-line ticket triage format.",
        system_prompt="You triage customer tickets for Harbor & Pine Outfitters.",
        guidelines=GUIDELINES, convention_regex=CONVENTION, glossary=GLOSSARY)
    # The studio wrote this vocabulary itself, so it is confirmed as an admin's (issue 23).
    dataset = datasets.confirm_vocabulary(db, dataset.id, actor=actor)
    importing.import_jsonl(db, dataset, (DEMO_DIR / "train.jsonl").read_bytes(),
                          source="demo/train.jsonl", author=actor, split="train")
    importing.import_jsonl(db, dataset, (DEMO_DIR / "heldout.jsonl").read_bytes(),
                          source="demo/heldout.jsonl", author=actor, split="heldout")
    return dataset
