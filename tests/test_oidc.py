"""Sign-in through an identity provider: role mapping from a fake st.user, and the permissions it gives."""

import pytest

from core.platform import auth, oidc, permissions

SECRETS = {
    "auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x",
             "client_id": "studio", "client_secret": "s",
             "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration"},
    "studio_oidc": {"role_claim": "groups", "admin": ["studio-admins"], "author": ["support-leads"],
                    "rater": ["support"]},
}


@pytest.fixture
def identity_provider():
    auth.use_identity_provider(True)
    yield
    auth.use_identity_provider(False)


def test_configuration_is_read_from_secrets():
    assert oidc.configured(SECRETS) and not oidc.configured({}) and not oidc.configured({"auth": {"x": 1}})
    assert oidc.providers(SECRETS) == [None]
    assert oidc.providers({"auth": {"cookie_secret": "x", "okta": {"client_id": "a"}}}) == ["okta"]
    with pytest.raises(ValueError, match="unknown keys: admins"):
        oidc.RoleMapping.from_secrets({"studio_oidc": {"admins": ["x"]}})


@pytest.mark.parametrize(("user", "expected"), [
    ({"email": "lee@example.com", "groups": ["support", "studio-admins"]}, ("lee@example.com", "admin")),
    ({"email": "kai@example.com", "groups": ["support-leads"]}, ("kai@example.com", "author")),
    ({"email": "mo@example.com", "groups": "support"}, ("mo@example.com", "rater")),   # a single string claim
])
def test_role_comes_from_the_claim_strongest_first(user, expected):
    assert oidc.role_for(user, oidc.RoleMapping.from_secrets(SECRETS), {}) == expected


def test_users_file_then_default_role_then_refusal():
    mapping = oidc.RoleMapping.from_secrets(SECRETS)
    users = {"ana@example.com": auth.User("ana@example.com", "author", "scrypt$x$y")}
    assert oidc.role_for({"email": "ana@example.com", "groups": []}, mapping, users) == ("ana@example.com", "author")
    with pytest.raises(ValueError, match="neither the 'groups' claim nor the users file"):
        oidc.role_for({"email": "stranger@example.com"}, mapping, users)
    with pytest.raises(ValueError, match="no 'email' claim"):
        oidc.role_for({"name": "No Mail"}, mapping, users)
    fallback = oidc.RoleMapping(default_role="rater")
    assert oidc.role_for({"email": "new@example.com"}, fallback, {}) == ("new@example.com", "rater")


def test_admitted_people_get_their_role_and_nobody_else_is_anonymous(identity_provider):
    name, role = oidc.role_for({"email": "mo@example.com", "groups": ["support"]},
                               oidc.RoleMapping.from_secrets(SECRETS), {})
    auth.admit(name, role)
    assert permissions.allowed("mo@example.com", "rate")
    assert not permissions.allowed("mo@example.com", "start_run")
    # Without a users file the studio would treat every name as `anonymous` (all rights); with an
    # identity provider a name it did not admit has no role at all.
    assert permissions.role_of("someone-typed-this") is None
    with pytest.raises(permissions.PermissionDenied, match="not a user of this studio"):
        permissions.require("someone-typed-this", "rate")


def test_the_app_asks_for_the_identity_provider_when_auth_is_configured(db_path, model_dir):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file("../app.py", default_timeout=120)
    for key, value in SECRETS.items():
        at.secrets[key] = value
    at.run()
    try:
        assert not at.exception, [e.message for e in at.exception]
        assert [b.label for b in at.button] == ["Sign in with your identity provider"]
        assert not at.sidebar.selectbox  # no studio (and no "You are" picker) before signing in
    finally:
        auth.use_identity_provider(False)
