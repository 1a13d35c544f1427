"""Sign-in through the team's identity provider (OpenID Connect via Streamlit's st.login).

When `.streamlit/secrets.toml` has an `[auth]` section, the studio signs people in with their
identity provider instead of the password file (issue 16). Roles come from a claim of the ID token
(for example `groups`), mapped in a `[studio_oidc]` section, or, failing that, from the users file
under the person's e-mail. A person matched by neither is refused with a message naming the claim.

Example (secrets.toml):

    [auth]
    redirect_uri = "https://studio.example.com/oauth2callback"
    cookie_secret = "…"
    client_id = "…"
    client_secret = "…"
    server_metadata_url = "https://idp.example.com/.well-known/openid-configuration"

    [studio_oidc]
    role_claim = "groups"
    admin = ["studio-admins"]
    author = ["support-leads"]
    rater = ["support"]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.platform import auth

RANK = ("admin", "author", "rater")  # a person in several groups gets the strongest role


@dataclass(frozen=True)
class RoleMapping:
    role_claim: str = "groups"
    name_claim: str = "email"
    admin: tuple[str, ...] = ()
    author: tuple[str, ...] = ()
    rater: tuple[str, ...] = ()
    default_role: str = ""  # "" refuses people who match nothing

    def __post_init__(self) -> None:
        if self.default_role and self.default_role not in auth.ROLES:
            raise ValueError(f"[studio_oidc] default_role must be one of {', '.join(auth.ROLES)} or empty")

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, Any]) -> RoleMapping:
        section = dict(secrets.get("studio_oidc", {}))
        unknown = set(section) - {"role_claim", "name_claim", "admin", "author", "rater", "default_role"}
        if unknown:
            raise ValueError(f"[studio_oidc] has unknown keys: {', '.join(sorted(unknown))}")
        return cls(role_claim=str(section.get("role_claim", "groups")), name_claim=str(section.get("name_claim", "email")),
                   admin=tuple(section.get("admin", ())), author=tuple(section.get("author", ())),
                   rater=tuple(section.get("rater", ())), default_role=str(section.get("default_role", "")))


def configured(secrets: Mapping[str, Any]) -> bool:
    """Whether an identity provider is set up (an [auth] section with a client id, at top or per provider)."""
    section = secrets.get("auth")
    if not isinstance(section, Mapping):
        return False
    return "client_id" in section or any(isinstance(v, Mapping) and "client_id" in v for v in section.values())


def providers(secrets: Mapping[str, Any]) -> list[str | None]:
    """Provider names for st.login: None for a single provider configured directly under [auth]."""
    section = secrets.get("auth", {})
    named = [k for k, v in section.items() if isinstance(v, Mapping) and "client_id" in v]
    return named or [None]


def role_for(user: Mapping[str, Any], mapping: RoleMapping, users: Mapping[str, auth.User]) -> tuple[str, str]:
    """(name, role) for a signed-in person, from the claim, else the users file; ValueError says why not."""
    name = str(user.get(mapping.name_claim) or "").strip()
    if not name:
        raise ValueError(f"The identity provider sent no '{mapping.name_claim}' claim; the studio needs it as the name.")
    if name == auth.SYSTEM_ACTOR:
        raise ValueError(f"'{auth.SYSTEM_ACTOR}' is reserved for the studio's own writes.")
    claim = user.get(mapping.role_claim)
    values = {claim} if isinstance(claim, str) else set(claim or ())
    for role in RANK:
        if values & set(getattr(mapping, role)):
            return name, role
    if name in users:
        return name, users[name].role
    if mapping.default_role:
        return name, mapping.default_role
    raise ValueError(f"{name} is signed in, but neither the '{mapping.role_claim}' claim nor the users file gives "
                     "a studio role. Ask an admin to add you.")
