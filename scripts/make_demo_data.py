"""Writes the demo project's JSONL (data/demo/) from hand-written scenarios; run once, output committed."""

from __future__ import annotations

import json
import random
from pathlib import Path

SYSTEM = "You triage customer tickets for Harbor & Pine Outfitters."

PRODUCTS = ["Ridgeline 2P tent", "Tidewater rain shell", "Summit 45L pack", "Cedar trail runners",
            "Driftwood camp stove", "Northstar sleeping bag", "Kestrel trekking poles",
            "Basin water filter", "Alder fleece hoodie", "Granite headlamp"]

# (category, priority, ticket template, summary template, reply template)
SCENARIOS = [
    ("Shipping", "P2", "Hi, I ordered the {p} on order {o} {d} days ago and tracking has not moved since it left the warehouse. Can you check?",
     "Order {o} ({p}) has shown no tracking movement for {d} days.",
     "Apologise for the delay, open a carrier trace on {o} and promise an update within 48 hours."),
    ("Shipping", "P1", "My {p} was supposed to arrive before my trip this weekend but order {o} still says processing. I leave in two days!",
     "Order {o} ({p}) is still processing and the customer travels in two days.",
     "Upgrade {o} to overnight shipping at no cost and confirm the new delivery date today."),
    ("Shipping", "P3", "Quick question: do you ship the {p} to Canada, and roughly how long does it take?",
     "Customer asks whether the {p} ships to Canada and the delivery time.",
     "Confirm we ship to Canada in 5 to 8 business days and link the international shipping page."),
    ("Returns", "P2", "The {p} from order {o} does not fit the way I expected. How do I send it back for a refund?",
     "Customer wants to return the {p} from order {o} for a refund because of fit.",
     "Send the prepaid return label for {o} and explain the refund posts 5 days after we receive it."),
    ("Returns", "P3", "Can I exchange the {p} I bought last month for a different colour? The tags are still on.",
     "Customer wants to exchange an unused {p} for another colour.",
     "Confirm the exchange is within the 60-day window and send the exchange form."),
    ("Returns", "P1", "I returned the {p} three weeks ago (order {o}) and still have no refund. This is the third time I am writing.",
     "Refund for returned {p} on order {o} is three weeks late after repeated contacts.",
     "Escalate {o} to the refunds lead, issue the refund today and apologise for the repeated follow-ups."),
    ("Product", "P1", "The {p} I received is damaged: there is a tear in the fabric straight out of the box. Order {o}.",
     "The {p} on order {o} arrived with a tear in the fabric.",
     "Apologise, ship a replacement for {o} today and send a prepaid label for the damaged item."),
    ("Product", "P2", "After two weeks of use the zipper on my {p} broke. Is this covered by warranty?",
     "Zipper failed on the customer's {p} after two weeks of use.",
     "Confirm the lifetime warranty covers the zipper and start a warranty repair or replacement."),
    ("Product", "P3", "What is the difference between the {p} and last year's model? Trying to decide before I buy.",
     "Customer asks how the {p} differs from last year's model.",
     "Summarise the three main changes in the new {p} and link the comparison chart."),
    ("Billing", "P1", "I was charged twice for order {o} - two identical charges on my card for the {p}.",
     "Customer was charged twice for order {o} ({p}).",
     "Confirm the duplicate charge on {o}, refund the second charge today and share the reference number."),
    ("Billing", "P2", "The discount code SPRING15 did not apply to my {p} at checkout, order {o}. Can you adjust the price?",
     "Discount code SPRING15 was not applied to the {p} on order {o}.",
     "Refund the 15 percent difference on {o} and explain the code now works at checkout."),
    ("Billing", "P3", "Can I get a VAT invoice for order {o}? I bought the {p} for my company.",
     "Customer requests a VAT invoice for order {o} ({p}).",
     "Send the VAT invoice for {o} as a PDF and confirm the company details on it."),
    ("Account", "P2", "I cannot log in to my account anymore, the reset link says it expired. I want to check order {o}.",
     "Customer cannot log in because the password reset link expired; needs order {o}.",
     "Send a fresh reset link valid for 24 hours and share the status of {o} in the meantime."),
    ("Account", "P3", "How do I stop getting the weekly newsletter? I still want order updates for the {p}.",
     "Customer wants to unsubscribe from the newsletter but keep order updates.",
     "Unsubscribe them from marketing email and confirm order updates for the {p} continue."),
    ("Account", "P1", "Someone placed order {o} on my account that I did not make! Please cancel it.",
     "Customer reports an unauthorised order {o} on their account.",
     "Cancel {o} immediately, lock the account, and send steps to secure it with a new password."),
]


OPENERS = ["", "Hello,", "Hi there.", "Good morning team,", "Hey,", "To whom it may concern:",
           "Hi Harbor & Pine,", "Hello support,"]
CLOSERS = ["", "Thanks.", "Thanks in advance!", "Appreciate the help.", "Regards.",
           "Please get back to me soon.", "Cheers."]

# Held-out tickets are written separately, in other words, so that the evaluation measures the
# house style on new requests rather than recall of near-copies of training examples.
HELDOUT = [
    ("Shipping", "P2", "Where is my parcel? Order HP-71002 with a Granite headlamp was meant to come last Tuesday."),
    ("Shipping", "P1", "Wedding hike on Saturday and the Northstar sleeping bag (HP-71015) has not shipped. Help!"),
    ("Shipping", "P3", "Do you offer pickup from the Portland store instead of delivery?"),
    ("Shipping", "P2", "The courier left a note but no parcel for HP-71031. What now?"),
    ("Returns", "P2", "These Cedar trail runners rub my heel. Order HP-71044, worn once indoors. Refund please."),
    ("Returns", "P3", "Is it possible to swap my Alder fleece hoodie for a size up?"),
    ("Returns", "P1", "Sent back the Summit 45L pack a month ago, HP-71059, tracking shows you got it, money still missing."),
    ("Returns", "P2", "Gift receipt only - can I return a Basin water filter my aunt bought me?"),
    ("Product", "P1", "The Driftwood camp stove leaks fuel at the valve. Order HP-71067. Feels unsafe."),
    ("Product", "P2", "One of my Kestrel trekking poles will not lock anymore after a month."),
    ("Product", "P3", "Is the Tidewater rain shell fully seam-sealed or just the shoulders?"),
    ("Product", "P2", "Headlamp battery dies in an hour instead of the advertised eight. Order HP-71072."),
    ("Billing", "P1", "Your site charged me 3 times for HP-71080!! I only clicked buy once."),
    ("Billing", "P2", "Price of the Ridgeline 2P tent dropped a week after I bought it (HP-71093). Can I get the difference?"),
    ("Billing", "P3", "Which payment methods do you take apart from cards?"),
    ("Billing", "P2", "Gift card balance did not come off my total on order HP-71101."),
    ("Account", "P2", "My account email is wrong and I cannot change it in settings."),
    ("Account", "P1", "Got an email saying my password changed but I did not change it."),
    ("Account", "P3", "How do I delete my saved address from the account?"),
    ("Account", "P2", "Loyalty points from HP-71118 never showed up on my account."),
]

def make_examples(rng: random.Random, count: int, start_order: int) -> list[dict]:
    examples = []
    for i in range(count):
        category, priority, ticket, summary, reply = SCENARIOS[i % len(SCENARIOS)]
        values = {"p": rng.choice(PRODUCTS), "o": f"HP-{start_order + i * 37}",
                  "d": rng.randint(6, 14)}
        answer = (f"Category: {category}\nPriority: {priority}\n"
                  f"Summary: {summary.format(**values)}\nReply: {reply.format(**values)}")
        text = " ".join(part for part in (rng.choice(OPENERS), ticket.format(**values),
                                          rng.choice(CLOSERS)) if part)
        examples.append({"messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": text},
            {"role": "assistant", "content": answer},
        ]})
    rng.shuffle(examples)
    return examples


def heldout_examples() -> list[dict]:
    rows = []
    for category, priority, ticket in HELDOUT:
        answer = (f"Category: {category}\nPriority: {priority}\n"
                  f"Summary: {ticket.split('.')[0].strip()[:120]}.\n"
                  "Reply: Acknowledge the request and resolve it under the matching policy.")
        rows.append({"messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": ticket},
            {"role": "assistant", "content": answer},
        ]})
    return rows


def main() -> None:
    out = Path(__file__).resolve().parent.parent / "data" / "demo"
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20261130)
    train = make_examples(rng, 75, 20000)
    heldout = heldout_examples()
    for name, rows in (("train.jsonl", train), ("heldout.jsonl", heldout)):
        with open(out / name, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
