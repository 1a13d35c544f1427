"""The run-target setting: local by default, Ray only when Ray is there, admins only."""

import sys

import pytest

from core.platform import permissions, studio_settings


def test_default_is_local_and_bad_targets_are_refused(db):
    assert studio_settings.run_target(db) == studio_settings.RunTarget("local", "", 0.0, "")
    with pytest.raises(ValueError, match="needs an address"):
        studio_settings.RunTarget("ray", " ")
    with pytest.raises(ValueError, match="local or ray"):
        studio_settings.RunTarget("kubernetes", "x")


def test_without_ray_the_setting_says_how_to_add_it(db, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray.job_submission", None)  # as if Ray were not installed
    with pytest.raises(studio_settings.RayUnavailable, match="pip install -r requirements-ray.txt"):
        studio_settings.set_run_target(db, studio_settings.RunTarget("ray", "auto"))
    assert studio_settings.run_target(db).kind == "local"  # nothing was saved


def test_only_admins_choose_where_runs_execute(db, team_users):
    with pytest.raises(permissions.PermissionDenied):
        studio_settings.set_run_target(db, studio_settings.RunTarget("local"), actor="ana")
    studio_settings.set_run_target(db, studio_settings.RunTarget("local"), actor="boss")
