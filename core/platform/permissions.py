"""Who may do what: one table of role x action, enforced inside the core functions that write.

A hidden widget is not a permission (issue 12): every core function that writes calls
`require(actor, action)` first, so the pages, the CLI and the worker all meet the same rule.
The actor is a user name; its role comes from the users file. Without a users file the studio is
single-user on 127.0.0.1 and every name is `anonymous`, which may do everything.

Some actions are asked about a resource, as Datasette's `permission_allowed(actor, action,
resource)` does: `allowed(actor, "see_outcome", run=Run(db, run_id))`. The role table answers
first; then the rule registered for the action decides for that run. The platform is the bottom
layer and knows nothing of rating, so the blinding rule lives in `core.rating.sessions` and
registers itself here (`resource_rule`) when that module is imported; asking about a resource
whose rule was never registered fails loudly instead of answering yes (issues 22, 23).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    "see_outcome": _PEOPLE,              # a run's outcome or labelled answers; asked with run=, the
                                         # blinding rule decides per run (see resource_rule)
    "view_open_results": _ADMINS,        # outcomes and exports of a run whose rating is still open
    "close_rating": _ADMINS,
    "approve": _ADMINS,
    "studio_settings": _ADMINS,          # team, raters per pair, runs at once, hosted rates
}


# Actions that are only ever asked about a resource; asking without one is a programming error.
RESOURCE_ACTIONS = frozenset({"see_outcome"})


class PermissionDenied(PermissionError):
    """The actor's role may not do this; nothing was written."""


@dataclass(frozen=True)
class Run:
    """A run as the resource of an access question: the database it lives in and its id.

    `any_prompt`: the viewer chooses the prompts (the playground), so the run shares every prompt
    with any other run on its base model."""
    db: Any
    id: int
    any_prompt: bool = False


@dataclass(frozen=True)
class Decision:
    """An access answer, with the reason to show when it is no."""
    allowed: bool
    reason: str = ""


# (actor, role, run) -> Decision, per action; registered by the layer that knows the resource.
RunRule = Callable[[str, str, Run], Decision]
_RUN_RULES: dict[str, RunRule] = {}


def resource_rule(action: str) -> Callable[[RunRule], RunRule]:
    """Register the rule that decides `action` for a run (a decorator; one rule per action)."""
    if action not in RESOURCE_ACTIONS:
        raise KeyError(f"{action!r} is not asked about a resource")

    def register(rule: RunRule) -> RunRule:
        _RUN_RULES[action] = rule
        return rule
    return register


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


def decide(actor: str, action: str, run: Run | None = None) -> Decision:
    """May the actor do this (to this run)? The role table first, then the run's rule."""
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")
    role = role_of(actor)
    if role is None or role not in ACTIONS[action]:
        who = f"{actor or 'nobody'} ({role})" if role else f"{actor or 'nobody'} (not a user of this studio)"
        roles = " or ".join(r for r in ("author", "rater", "admin") if r in ACTIONS[action])
        return Decision(False, f"{who} may not {action.replace('_', ' ')}: that needs the {roles} role.")
    if run is None:
        if action in RESOURCE_ACTIONS:
            raise ValueError(f"{action!r} is asked about a run: pass run=permissions.Run(db, run_id)")
        return Decision(True)
    rule = _RUN_RULES.get(action)
    if rule is None:
        raise LookupError(f"No rule decides {action!r} for a run: core.rating.sessions registers it on import.")
    return rule(actor, role, run)


def allowed(actor: str, action: str, run: Run | None = None) -> bool:
    """Whether the actor may do this (to this run, for the actions asked about one)."""
    return decide(actor, action, run).allowed


def require(actor: str, action: str, run: Run | None = None) -> None:
    """Raise PermissionDenied, with the reason, unless the actor may perform the action."""
    decision = decide(actor, action, run)
    if not decision.allowed:
        raise PermissionDenied(decision.reason)


def table_markdown() -> str:
    """The role x action table as Markdown (for docs/reliability.md)."""
    lines = ["| action | " + " | ".join(ROLES) + " |", "|---|" + "---|" * len(ROLES)]
    for action, roles in ACTIONS.items():
        lines.append(f"| {action} | " + " | ".join("yes" if r in roles else "no" for r in ROLES) + " |")
    return "\n".join(lines)
