"""The command line drives the same core functions as the pages."""

import json
import re
import subprocess
import sys
from pathlib import Path

from core.platform import store

REPO = Path(__file__).resolve().parent.parent


def cli(*args: str, db: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", "--db", str(db), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_init_and_status_json(tmp_path, model_dir):
    db = tmp_path / "scratch.db"
    assert cli("init", db=db).returncode == 0
    out = cli("status", "--json", db=db)
    data = json.loads(out.stdout)
    newest = max(name for name in vars(store) if re.fullmatch(r"m\d{3}_\w+", name))
    assert data["model_ready"] is True and data["last_migration"] == newest
    assert data["tables"]["examples"] == 95 and data["tables"]["datasets"] == 1


def test_import_json_report_and_exit_codes(tmp_path, model_dir):
    db = tmp_path / "s.db"
    good = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    source = tmp_path / "in.jsonl"
    source.write_bytes((json.dumps(good) + "\n\n" + json.dumps(good) + "\n{bad\n").encode())
    out = cli("import", str(source), "--dataset", "cli-set", "--json", db=db)
    assert out.returncode == 0
    report = json.loads(out.stdout)
    assert (report["imported"], report["duplicates"], report["blank"]) == (1, 1, 1)
    assert report["errors"] == [{"line": 4, "code": "invalid_json", "message": report["errors"][0]["message"]}]
    missing = cli("import", str(tmp_path / "nope.jsonl"), "--dataset", "x", db=db)
    assert missing.returncode == 1 and missing.stderr.startswith("error: Cannot read")
    assert len(missing.stderr.strip().splitlines()) == 1


def test_export_round_trip_and_pii_scan(tmp_path, model_dir):
    db = tmp_path / "s.db"
    source = tmp_path / "in.jsonl"
    rows = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Question {i}?"},
                          {"role": "assistant", "content": f"Answer {i}."}]} for i in range(5)]
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert cli("import", str(source), "--dataset", "rt", db=db).returncode == 0
    scan = cli("pii-scan", "--dataset", "rt", "--json", db=db)
    assert scan.returncode == 0 and json.loads(scan.stdout) == []
    assert cli("freeze", "--dataset", "rt", db=db).returncode == 0
    out = tmp_path / "out.jsonl"
    assert cli("export", "--dataset", "rt", "--out", str(out), db=db).returncode == 0
    canonical = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in rows]
    assert out.read_text().splitlines() == canonical


def test_unknown_dataset_is_one_clear_line(tmp_path):
    out = cli("export", "--dataset", "ghost", "--out", str(tmp_path / "x"), "--json", db=tmp_path / "s.db")
    assert out.returncode == 1
    assert json.loads(out.stdout) == {"error": "No dataset called 'ghost'."}


def test_models_lists_default_and_refuses_unavailable_hub_id(tmp_path, model_dir):
    db = tmp_path / "s.db"
    listed = json.loads(cli("models", "--json", db=db).stdout)
    assert listed["models"][0]["name"] == "SmolLM2-135M-Instruct" and listed["models"][0]["ready"]
    hub = cli("models", "--add", "someorg/not-cached-model", db=db)
    assert hub.returncode == 1 and "offline" in hub.stderr
    local = cli("models", "--add", str(model_dir), "--json", db=db)
    assert local.returncode == 0 and any(m["source"] == "local" for m in json.loads(local.stdout)["models"])


def test_summary_writes_every_format(rated_db, tmp_path):
    from core.platform import store
    from core.rating import sessions
    from core.training import runs

    db = store.connect(rated_db)
    run_id = runs.list_runs(db)[0].id
    session = sessions.start_session(db, run_id, "Dana")
    for position, left in session.order:
        sessions.record_rating(db, session, position, "A" if left == "tuned" else "tie")
    for fmt in ("json", "csv", "md", "html"):
        out = tmp_path / f"summary.{fmt}"
        done = cli("summary", "--run", str(run_id), "--format", fmt, "--out", str(out), db=rated_db)
        assert done.returncode == 0, done.stderr
        assert out.stat().st_size > 200
    data = json.loads(cli("summary", "--run", str(run_id), "--json", db=rated_db).stdout)
    assert data["outcomes"]["wins"] >= 1 and data["lineage"]["adapter_sha256"]
    approved = cli("approve", "--run", str(run_id), "--decision", "approved", "--note", "ok", db=rated_db)
    assert approved.returncode == 0


def test_settings_and_pii_settings_from_the_command_line(tmp_path):
    db = tmp_path / "s.db"
    out = cli("--json", "settings", "--raters-per-pair", "3", "--runs-at-once", "2", db=db)
    assert json.loads(out.stdout)["raters_per_pair"] == 3 and json.loads(out.stdout)["runs_at_once"] == 2
    rules = tmp_path / "rules.txt"
    rules.write_text("EMPLOYEE_ID | \\bEMP-\\d{5}\\b | 0.9\n")
    out = cli("--json", "pii-settings", "--entities", "PERSON,EMAIL_ADDRESS", "--rules", str(rules), db=db)
    data = json.loads(out.stdout)
    assert data["entities"] == ["PERSON", "EMAIL_ADDRESS"] and data["regex_rules"][0]["entity"] == "EMPLOYEE_ID"
    bad = cli("pii-settings", "--entities", "", db=tmp_path / "fresh.db")  # no house rules to fall back on
    assert bad.returncode == 1 and "at least one entity" in bad.stderr


def test_the_cli_acts_as_its_user_and_their_role(tmp_path, users_toml):
    import os

    db = tmp_path / "s.db"
    env = dict(os.environ, STUDIO_USERS_FILE=str(users_toml))
    run = lambda *a: subprocess.run([sys.executable, "-m", "core", "--db", str(db), *a], cwd=REPO,  # noqa: E731
                                    capture_output=True, text=True, timeout=300, env=env)
    refused = run("--user", "Sam", "settings", "--raters-per-pair", "2")
    assert refused.returncode == 1 and "Sam (rater) may not studio settings" in refused.stderr
    assert run("--user", "boss", "settings", "--raters-per-pair", "2").returncode == 0
    nobody = run("settings", "--runs-at-once", "2")  # the default user 'cli' is not in the file
    assert nobody.returncode == 1 and "not a user of this studio" in nobody.stderr
