"""A realistic domain set for PII precision (issue 16): support tickets about a software company's own
products, written for this purpose (not the demo). Most tickets hold no personal data; PLANTED lists
the ones that do, with the values a scan must find.

The product, team and feature names are the kind the small spaCy model takes for people and places.
"""

PRODUCTS = ["Analytics Pro", "Backup Vault", "MailFlow API", "Sync Hub", "Ledger Lite", "Pulse Dashboards",
            "Beacon Alerts", "Atlas Search"]
TEAMS = ["Platform team", "Billing Ops", "Tier 2 support", "Customer Success"]

GUIDELINES = """Answer as Northwind Cloud support. Name the product (Analytics Pro, Backup Vault, MailFlow API,
Sync Hub, Ledger Lite, Pulse Dashboards, Beacon Alerts or Atlas Search) and the team that owns the next step
(Platform team, Billing Ops, Tier 2 support, Customer Success). Reissue, Escalate and Refund are the three
actions we offer; start the reply with one of them."""

GLOSSARY = PRODUCTS + TEAMS + ["Northwind Cloud", "SSO", "webhook", "API key"]

TEMPLATES = [
    "Reissue the invoice for {p}: the March charge was billed twice.",
    "Our {p} workspace shows a 500 error after the last update.",
    "Can {t} confirm whether {p} supports SAML single sign-on?",
    "The {p} export to CSV stops at 10,000 rows.",
    "Reissue the API key for {p}; the old one leaked into a public repo.",
    "We upgraded to {p} Enterprise but the seat count still says 25.",
    "Escalate to {t}: {p} has been down in the EU region for an hour.",
    "How do I move dashboards from {p} to {q}?",
    "The {p} webhook retries forever when our endpoint returns 410.",
    "Refund the unused months of {p}; we cancelled in January.",
    "After enabling SSO, {p} logs everyone out every ten minutes.",
    "Does {p} keep backups for 30 or 90 days on the Team plan?",
    "{p} alerts arrive twice in Slack since Tuesday.",
    "Reissue the onboarding link for {p}, the first one expired.",
    "The {p} mobile app crashes when opening a shared report.",
    "Please ask {t} why {p} rate limits us at 50 requests per second.",
    "{p} and {q} disagree on last month's revenue figure.",
    "Escalate: {p} deleted a scheduled job without warning.",
    "Can we get a sandbox for {p} before the renewal?",
    "Our audit asks where {p} stores data at rest.",
    "The {p} search index is two days behind.",
    "Refund the duplicate charge on the {p} add-on.",
    "Is there a way to export audit logs from {p} to {q}?",
    "{t} promised a fix for the {p} timezone bug last sprint.",
]

PLANTED = [
    ("Please call me back on (415) 555-0142 about {p}.", "PHONE_NUMBER", "(415) 555-0142"),
    ("Send the {p} invoice to dana.whitfield@example.org instead.", "EMAIL_ADDRESS", "dana.whitfield@example.org"),
    ("Our finance lead Priya Raman cannot log in to {p}.", "PERSON", "Priya Raman"),
    ("The {p} login came from 198.51.100.23, which is not ours.", "IP_ADDRESS", "198.51.100.23"),
    ("Marcus Oyelaran from our side will test the {p} fix.", "PERSON", "Marcus Oyelaran"),
    ("Charge the {p} renewal to card 4111 1111 1111 1111.", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("Escalate: Helen Castillo was charged twice for {p}.", "PERSON", "Helen Castillo"),
    ("Reply to ops-team@acme-logistics.com when {p} is back.", "EMAIL_ADDRESS", "ops-team@acme-logistics.com"),
    ("Our admin, Tomasz Wieczorek, needs {p} access restored.", "PERSON", "Tomasz Wieczorek"),
    ("Text updates on {p} to +44 20 7946 0321, please.", "PHONE_NUMBER", "+44 20 7946 0321"),
]


def tickets() -> tuple[list[str], list[tuple[str, str, str]]]:
    """120 tickets: 110 clean, 10 with planted personal data (text, entity, value)."""
    clean = []
    for n in range(110):
        template, round_ = TEMPLATES[n % len(TEMPLATES)], n // len(TEMPLATES)
        p = (n + round_ * 3) % len(PRODUCTS)  # each round pairs the templates with other products
        clean.append(template.format(p=PRODUCTS[p], q=PRODUCTS[(p + 5) % len(PRODUCTS)],
                                     t=TEAMS[(n + round_) % len(TEAMS)]))
    planted = [(text.format(p=PRODUCTS[i % len(PRODUCTS)]), entity, value)
               for i, (text, entity, value) in enumerate(PLANTED)]
    return clean, planted
