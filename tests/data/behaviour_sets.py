"""Three bench datasets for time to behaviour (issue 24), written for it and never typed a convention:

- `helpdesk`: a software company's support tickets (Lumen Analytics, a reporting SaaS), 90 train /
  30 held-out, answered in a four-line format: Category (Billing, Technical, Account, Security),
  Priority (P1–P3), Summary, Next step.
- `vet_clinic`: a veterinary clinic's appointment requests, 40 train / 12 held-out, a four-line
  format with a closed value set on three labels: Species (Dog, Cat, Rabbit, Bird), Urgency
  (Emergency, Same day, Routine), Service (Vaccination, Dental, Surgery consult, Check-up,
  Nutrition), then a free Note.
- `insurance_claims`: an insurer's first notice of loss e-mails (Kestrel Mutual: home, motor and
  travel cover), 60 train / 20 held-out, written to check that the defaults generalise, not to be
  easy: a five-line format that opens with a free Summary, then three closed value sets, Cover
  (Motor, Home, Travel), Peril (Collision, Theft, Water, Fire, Storm, Medical) and Route (Fast track,
  Claims handler, Emergency line), and ends with a free Ask for (what to request from the customer).
  Cover and peril follow the loss, not everything the e-mail mentions (a house insured too, rain let
  in by a storm); most held-out templates put known values together in ways training never does
  (an injury at the roadside, a small fire, a tree on a car, a theft on a beach, a medical flight).

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

CLAIMS_SYSTEM = "You triage first notice of loss e-mails for Kestrel Mutual, a home, motor and travel insurer."
VEHICLES = ["car", "van", "estate car", "hatchback", "people carrier"]
ROOMS = ["kitchen", "bathroom", "hallway", "living room", "dining room"]
ITEMS = ["laptop", "camera", "tablet", "e-reader", "drone"]
WHEN = ["last night", "this morning", "yesterday", "on Saturday", "on Sunday evening", "earlier today", "two days ago"]
CLAIMANTS = ["Ines", "Malik", "Sofia", "Ben", "Yuki", "Carla", "Theo", "Amara", "Lars", "Rosa", "Kofi", "Elin"]
CLAIM_OPENERS = ["Hello,", "Hi,", "Dear claims team,", "Good morning,", "To whom it may concern,", ""]
CLAIM_ASIDES = ["Sorry if this is the wrong address for claims.", "This is my first claim with you.",
                "I hope I've included everything you need.", "I took some photos if you need them.", "", ""]
# (cover, peril, route, e-mail, summary, ask for); {vehicle}, {Vehicle}, {room}, {item}, {when}, {small}
# and {large} (sums of money) are filled in. Cover and peril follow the loss itself, not everything the
# e-mail mentions (rain let in by a storm is Storm, a leaking pipe is Water); the route follows how bad
# and how clear the loss is: Fast track for small undisputed losses, Claims handler for large,
# structural or disputed ones, Emergency line when someone is hurt, stranded or cannot stay at home.
CLAIMS: list[tuple[str, str, str, str, str, str]] = [
    ("Motor", "Collision", "Fast track",
     "Someone reversed into my parked {vehicle} at the supermarket {when}. The other driver admitted it "
     "straight away and we swapped details. Only the rear bumper is dented.",
     "Parked {vehicle} hit by a reversing driver who admitted fault; rear bumper dented.",
     "The other driver's details and photos of the bumper."),
    ("Motor", "Collision", "Claims handler",
     "I was hit at a roundabout {when} and now the other driver claims I pulled out in front of him. "
     "My {vehicle} can't be driven and is at a garage.",
     "Roundabout collision with fault disputed by the other driver; {vehicle} cannot be driven.",
     "A sketch of the junction, any dashcam footage and the witnesses' contact details."),
    ("Motor", "Collision", "Emergency line",
     "I've just skidded into a wall on my way to work. My passenger has hurt her neck and the ambulance is "
     "here now. The {vehicle} is still half across the road.",
     "Collision just now; passenger injured and the {vehicle} is blocking the road.",
     "Nothing yet; send recovery for the {vehicle} and call the customer back."),
    ("Motor", "Theft", "Fast track",
     "Someone smashed the side window of my {vehicle} {when} and took my {item} off the back seat. "
     "I've reported it to the police.",
     "Side window of the {vehicle} smashed and a {item} taken from the back seat.",
     "The police crime reference and a glazier's quote for the window."),
    ("Motor", "Theft", "Claims handler",
     "My {vehicle} was taken from our driveway {when}, and both keys are still in the house. "
     "The police have been told.",
     "{Vehicle} stolen from the driveway with both keys still at home.",
     "Both keys, the logbook and the police crime reference."),
    ("Motor", "Storm", "Fast track",
     "Hailstones dented the bonnet and roof of my {vehicle} in the storm {when}. Otherwise it's fine and "
     "I'm still driving it.",
     "Storm hail dented the bonnet and roof of the {vehicle}; still driveable.",
     "Photos of the dents and a body shop quote."),
    ("Motor", "Storm", "Claims handler",
     "Our house insurance is with you too, but the house is fine; this is about the car. During the gale "
     "{when} a tree came down on my parked {vehicle} and crushed the roof.",
     "A tree blown down in a gale crushed the roof of the parked {vehicle}; house unharmed.",
     "Photos of the {vehicle} and where it is being kept now."),
    ("Motor", "Fire", "Claims handler",
     "My {vehicle} caught fire on the hard shoulder {when}. We all got out fine and nobody was hurt, but "
     "the engine bay is completely burnt out.",
     "{Vehicle} caught fire on the hard shoulder; engine bay burnt out, nobody hurt.",
     "The fire service incident details and the name of the recovery yard."),
    ("Home", "Water", "Fast track",
     "The hose on our washing machine split {when} and soaked the kitchen floor. We mopped it all up; "
     "one rug is ruined.",
     "A split washing machine hose soaked the kitchen floor; one rug ruined.",
     "Photos of the rug and of the split hose."),
    ("Home", "Water", "Claims handler",
     "We got back from a weekend away {when} to find a pipe had burst in the loft. Water has come "
     "through two ceilings and the {room} ceiling has partly collapsed.",
     "A burst loft pipe let water through two ceilings; the {room} ceiling is partly down.",
     "Photos of every affected room and the plumber's report on the pipe."),
    ("Home", "Water", "Emergency line",
     "Water is pouring out of the ceiling light in the {room} right now and the electrics have tripped. "
     "I have two small children and we can't stay here tonight.",
     "Water pouring through a ceiling light, power off; the family cannot stay tonight.",
     "Nothing yet; send an emergency plumber and book a hotel for tonight."),
    ("Home", "Storm", "Fast track",
     "The wind {when} blew down about three metres of our garden fence. Nothing else was damaged.",
     "Wind blew down about three metres of the garden fence.",
     "Photos of the fence and a fencing contractor's quote."),
    ("Home", "Storm", "Claims handler",
     "After the storm {when} several roof tiles are missing and rain keeps coming into the {room} "
     "through the ceiling.",
     "The storm took off roof tiles and rain is coming through the {room} ceiling.",
     "Photos of the roof and the ceiling, and a roofer's report."),
    ("Home", "Fire", "Emergency line",
     "There was a fire in our kitchen {when}. The fire brigade put it out, but the whole ground floor is "
     "black with smoke and they've told us not to sleep here.",
     "Kitchen fire put out by the fire brigade; smoke throughout and the family told not to stay.",
     "Nothing yet; book emergency accommodation and call the customer."),
    ("Home", "Fire", "Fast track",
     "A candle tipped over {when} and scorched the windowsill and the curtain in our {room}. It went out "
     "by itself and nothing else is damaged.",
     "A tipped candle scorched the {room} windowsill and curtain; nothing else damaged.",
     "Photos of the windowsill and the curtain."),
    ("Home", "Theft", "Claims handler",
     "We came home {when} to find the back door forced and the house burgled. They took my {item}, "
     "the television and my late mother's jewellery.",
     "Home burgled through a forced back door; {item}, television and heirloom jewellery taken.",
     "The police crime reference and a list of the stolen items with receipts or photos."),
    ("Home", "Theft", "Fast track",
     "Someone cut the padlock on our garage {when} and took my {item} and the lawnmower. They tried the "
     "car parked inside as well, but it's locked and undamaged.",
     "Garage padlock cut; {item} and lawnmower stolen, the car inside undamaged.",
     "The police crime reference and receipts for the {item} and the lawnmower."),
    ("Travel", "Medical", "Emergency line",
     "I'm writing from a hospital abroad. My husband collapsed at our hotel {when} and the doctors want "
     "to operate. They are asking who will pay.",
     "Customer's husband is in hospital abroad and needs surgery; the hospital wants a payment guarantee.",
     "The hospital's contact details and the treating doctor's report."),
    ("Travel", "Medical", "Fast track",
     "We're back home now. I had an ear infection on holiday and paid {small} for a doctor and "
     "antibiotics at the resort. Can I claim it back?",
     "Customer paid {small} for a doctor and antibiotics for an ear infection on holiday.",
     "The doctor's invoice and the pharmacy receipt."),
    ("Travel", "Theft", "Fast track",
     "On the last day of our holiday my backpack with my {item} in it was stolen from the beach. We "
     "reported it to the local police before flying home.",
     "Backpack with a {item} stolen from a beach on holiday; reported to the local police.",
     "The local police report and proof that the customer owned the {item}."),
    ("Travel", "Theft", "Emergency line",
     "Our bags and both passports were stolen at the station on the first day of our trip. We have no "
     "money and nowhere to stay tonight.",
     "Bags, passports and money stolen abroad; customers stranded with nowhere to stay.",
     "Nothing yet; arrange emergency cash and call the customer back."),
    ("Travel", "Medical", "Claims handler",
     "I broke my leg skiing last month and was flown home on a medical flight. The hospital bills and the "
     "flight come to {large} so far.",
     "Broken leg while skiing; hospital treatment and a medical flight home cost {large} so far.",
     "All medical bills, the repatriation invoice and the doctor's report."),
    ("Travel", "Theft", "Claims handler",
     "While we were on holiday someone opened the safe in our hotel room and took {large} in cash and "
     "my watch. I also caught a cold on the trip, but that's not why I'm writing.",
     "Cash of {large} and a watch taken from the hotel room safe on holiday.",
     "The hotel's written report, the local police report and proof of the cash withdrawn."),
    ("Motor", "Collision", "Fast track",
     "I clipped a bollard pulling into a parking space {when}. It's just a scrape along the front wing of "
     "my {vehicle}; nobody else was involved. I'm away next month, so please e-mail rather than call.",
     "The {vehicle} scraped its front wing on a bollard while parking; no one else involved.",
     "Photos of the wing and a body shop quote."),
    ("Home", "Storm", "Fast track",
     "The drains couldn't cope with the downpour in the storm {when} and rainwater came in under the back "
     "door. The {room} flooring and skirting boards are soaked, but no other room was affected.",
     "Storm rainwater came in under the back door; the {room} flooring and skirting are soaked.",
     "Photos of the flooring and skirting and a drying or replacement quote."),
]
CLAIMS_HELDOUT = {2, 6, 14, 19, 21, 24}  # templates only held-out examples use (every value also in training)


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


def insurance_claims(seed: int = 24, train: int = 60, heldout: int = 20) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The insurance claims set: (train, held-out) lists of chat examples."""
    rng = random.Random(seed)
    out: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    for split, size in (("train", train), ("heldout", heldout)):
        templates = [t for i, t in enumerate(CLAIMS) if (i in CLAIMS_HELDOUT) == (split == "heldout")]
        out[split] = _claims_rows(rng, templates, size, seen)
    return out["train"], out["heldout"]


def _claims_rows(rng: random.Random, templates: list[tuple[str, str, str, str, str, str]], size: int,
                 seen: set[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while len(rows) < size:
        cover, peril, route, email, summary, ask = templates[len(rows) % len(templates)]
        vehicle = rng.choice(VEHICLES)
        slots = {"vehicle": vehicle, "Vehicle": vehicle[0].upper() + vehicle[1:], "room": rng.choice(ROOMS),
                 "item": rng.choice(ITEMS), "when": rng.choice(WHEN), "small": f"${rng.choice([85, 140, 180, 240])}",
                 "large": f"${rng.choice([3400, 6800, 9800, 14500]):,}"}
        body, aside = email.format(**slots), rng.choice(CLAIM_ASIDES)
        # The aside (no bearing on the answer) comes before or after the facts.
        parts = (aside, body) if rng.random() < 0.5 else (body, aside)
        user = " ".join(x for x in (rng.choice(CLAIM_OPENERS), *parts, rng.choice(CLOSERS), rng.choice(CLAIMANTS)) if x)
        user = user[0].upper() + user[1:]
        if user in seen:
            continue
        seen.add(user)
        answer = (f"Summary: {summary.format(**slots)}\nCover: {cover}\nPeril: {peril}\nRoute: {route}\n"
                  f"Ask for: {ask.format(**slots)}")
        rows.append(_chat(CLAIMS_SYSTEM, user, answer))
    rng.shuffle(rows)
    return rows


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


SETS = {"helpdesk": helpdesk, "vet-clinic": vet_clinic, "insurance-claims": insurance_claims}
