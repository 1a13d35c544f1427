"""Who may do what: one table of role x action, enforced inside the core functions that write.

A hidden widget is not a permission (issue 12): every core function that writes calls
`require(actor, action)` first, so the pages, the CLI and the worker all meet the same rule.
The actor is a user name; its role comes from the users file. Without a users file the studio is
single-user on 127.0.0.1 and every name is `anonymous`, which may do everything.
"""

from __future__ import annotations

from core.platform import auth

ANONYMOUS = "anonymous"
# Internal writes made by the studio itself (seeding the demo, reconciling runs, the worker
# finishing a run someone started). auth.load_users refuses a user of this name.
SYSTEM_ACTOR = auth.SYSTEM_ACTOR

ROLES = ("author", "rater", "admin", ANONYMOUS)
_EDITORS = frozenset({"author", "admin", ANONYMOUS})
_ADMINS = frozenset({"admin", ANONYMOUS})
_PEOPLE = frozenset({"author", "rater", "admin", ANONYMOUS})

# action -> roles allowed. docs/reliability.md prints this table (tests check they agree).
ACTIONS: dict[str, frozenset[str]] = {
    "create_dataset": _EDITORS,
    "edit_dataset": _EDITORS,            # description, guidelines, criteria, convention, glossary
    "import_examples": _EDITORS,
    "edit_examples": _EDITORS,           # editor, bulk edits, split, quarantine fixes
    "delete_examples": _EDITORS,
    "pii_scan": _EDITORS,
    "pii_anonymise": _EDITORS,
    "pii_dismiss": _ADMINS,              # clears the gate: a decision that personal data is not there
    "pii_settings": _ADMINS,
    "pii_override": _ADMINS,             # freeze past the gate with a recorded reason
    "freeze": _EDITORS,
    "export_dataset": _EDITORS,
    "start_run": _EDITORS,               # start, resume, cancel, generate answer pairs
    "delete_run": _ADMINS,
    "import_adapter": _ADMINS,
    "manage_models": _ADMINS,            # add or remove base models
    "rate": _PEOPLE,
    "ask_playground": _PEOPLE,           # a prompt to both models: a model load in a heavy-work slot
    "suggest_example": _EDITORS,         # "make this a training example" from the Rate page
    "view_open_results": _ADMINS,        # outcomes and exports of a run whose rating is still open
    "close_rating": _ADMINS,
    "approve": _ADMINS,
    "studio_settings": _ADMINS,          # team, raters per pair, runs at once, hosted rates
}


class PermissionDenied(PermissionError):
    """The actor's role may not do this; nothing was written."""


def role_of(actor: str) -> str | None:
    """The actor's role: admitted by the identity provider, else from the users file; `anonymous`
    when neither is set up; None for unknown names."""
    admitted = auth.admitted_role((actor or "").strip())
    if admitted:
        return admitted
    users = auth.load_users()
    if not users and not auth.identity_provider_mode():
        return ANONYMOUS
    if actor == SYSTEM_ACTOR:
        return "admin"
    user = users.get((actor or "").strip())
    return user.role if user else None


def allowed(actor: str, action: str) -> bool:
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")
    role = role_of(actor)
    return role is not None and role in ACTIONS[action]


def require(actor: str, action: str) -> None:
    """Raise PermissionDenied unless the actor's role may perform the action."""
    if allowed(actor, action):
        return
    role = role_of(actor)
    who = f"{actor or 'nobody'} ({role})" if role else f"{actor or 'nobody'} (not a user of this studio)"
    roles = " or ".join(r for r in ("author", "rater", "admin") if r in ACTIONS[action])
    raise PermissionDenied(f"{who} may not {action.replace('_', ' ')}: that needs the {roles} role.")


def table_markdown() -> str:
    """The role x action table as Markdown (for docs/reliability.md)."""
    lines = ["| action | " + " | ".join(ROLES) + " |", "|---|" + "---|" * len(ROLES)]
    for action, roles in ACTIONS.items():
        lines.append(f"| {action} | " + " | ".join("yes" if r in roles else "no" for r in ROLES) + " |")
    return "\n".join(lines)
