"""Trust probes from issue 12: blinding, sign-in back-off, erasure, inert sinks, strict import."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.curation import datasets, examples, importing
from core.pii import review, scan
from core.platform import auth, permissions, processes, store, text_safety
from core.rating import sessions
from core.reports import charts, export, standings
from core.reports import summary as stats
from core.training import runs, versions
from tests.conftest import PASSWORD, publish_generations

REPO = Path(__file__).resolve().parent.parent


def run_id(db) -> int:
    return runs.list_runs(db)[0].id


def convo(text: str, answer: str = "Noted.") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]


# ----------------------------------------------------------------------------- blinding

def sees(db, run: int, viewer: str) -> bool:
    """The one access question every read of an outcome asks."""
    return permissions.allowed(viewer, "see_outcome", run=permissions.Run(db, run))


def test_a_rater_mid_session_sees_no_outcome_and_no_export(rated_db, team_users):
    db = store.connect(rated_db)
    rid = run_id(db)
    session = sessions.start_session(db, rid, "Sam")
    sessions.record_rating(db, session, session.order[0][0], "A")
    assert not sees(db, rid, "Sam")
    for fmt in export.FORMATS:
        with pytest.raises(permissions.PermissionDenied, match="your own session is complete"):
            export.render(db, rid, fmt, "Sam")
    # The blinding rule holds for an admin who is rating too.
    boss = sessions.start_session(db, rid, "boss")
    sessions.record_rating(db, boss, boss.order[0][0], "B")
    assert not sees(db, rid, "boss")
    # A rater who is not rating still waits for rating to close; an admin who is not rating does not.
    assert not sees(db, rid, "Riley")
    assert sees(db, rid, "ana") is False
    assert sees(db, rid, "boss") is False
    sessions.close_rating(db, rid, actor="boss")
    assert sees(db, rid, "Riley") and sees(db, rid, "Sam")
    with pytest.raises(sessions.RatingError, match="closed"):
        sessions.record_rating(db, session, session.order[1][0], "A")


def sibling_run(db, first: int, random_adapter, *, same_prompts: bool) -> int:
    """Another run on the same base model whose answer pairs share the first run's prompts (or not)."""
    from core.rating import pairs as answer_pairs

    version_id = runs.get_run(db, first).dataset_version_id
    second = runs.import_adapter(db, random_adapter, version_id, actor=permissions.SYSTEM_ACTOR).id
    with store.transaction(db):
        for pair in answer_pairs.pairs(db, first):
            prompt = pair.prompt if same_prompts else [{**m, "content": m["content"] + " (reworded)"} for m in pair.prompt]
            for side, text in (("base", pair.base_text), ("tuned", pair.tuned_text + " x")):
                db.table("generations").insert({
                    "run_id": second, "position": pair.position, "prompt_json": json.dumps(prompt),
                    "reference": pair.reference, "side": side, "text": text, "settings_json": "{}",
                    "created_at": store.now()})
    publish_generations(db, second)
    return second


def finish_session(db, run: int, rater: str, verdict: str = "A") -> None:
    session = sessions.start_session(db, run, rater)
    while (position := sessions.next_position(db, session)) is not None:
        sessions.record_rating(db, session, position, verdict)


def test_while_rating_a_run_no_labelled_answer_of_a_run_sharing_its_prompts_is_shown(rated_db, team_users,
                                                                                     random_adapter):
    from core.rating import playground

    db = store.connect(rated_db)
    first = run_id(db)
    finish_session(db, first, "Riley")
    sessions.close_rating(db, first, actor="boss")  # a closed run: its report is open to everyone
    shared = sibling_run(db, first, random_adapter, same_prompts=True)
    apart = sibling_run(db, first, random_adapter, same_prompts=False)
    finish_session(db, apart, "Riley")
    sessions.close_rating(db, apart, actor="boss")
    asked = playground.ask(db, first, "Where is my parcel?", "Sam", launch=False)  # before rating anything
    assert playground.shown_to(db, asked.id, "Sam").prompt == "Where is my parcel?"
    # A report of a run on other prompts; one of `first` would bar Sam from rating `shared`
    # (tests/test_trust_blinding.py).
    assert "**Base model**" in export.render(db, apart, "md", "Sam")

    session = sessions.start_session(db, shared, "Sam")
    sessions.record_rating(db, session, session.order[0][0], "A")
    # The closed run shares the base model and prompts: its exports would label the base answers.
    for fmt in export.FORMATS:
        with pytest.raises(permissions.PermissionDenied, match=f"You are rating run {shared}, which shares its base "
                                                               "model and prompts"):
            export.render(db, first, fmt, "Sam")
    # A closed run on other prompts stays open to Sam's reports ...
    assert "**Base model**" in export.render(db, apart, "md", "Sam")
    # ... but not to the playground, where Sam may type the prompts of the run being rated.
    for target in (first, apart):
        with pytest.raises(permissions.PermissionDenied, match="shares its base model with"):
            playground.ask(db, target, "Where is my parcel?", "Sam", launch=False)
    with pytest.raises(permissions.PermissionDenied, match="shares its base model"):
        playground.shown_to(db, asked.id, "Sam")  # asked before rating, hidden while rating
    assert sees(db, first, "Riley")  # someone not rating the run sees it as before

    finish_session(db, shared, "Sam")
    assert sees(db, first, "Sam") and playground.shown_to(db, asked.id, "Sam").id == asked.id


def test_the_multi_run_table_ranks_only_closed_runs_the_viewer_may_see(rated_db, team_users, random_adapter):
    db = store.connect(rated_db)
    first = run_id(db)
    shared = sibling_run(db, first, random_adapter, same_prompts=True)
    apart = sibling_run(db, first, random_adapter, same_prompts=False)
    for run in (first, apart):
        finish_session(db, run, "Riley")
        sessions.close_rating(db, run, actor="boss")
    finish_session(db, shared, "Dana", "B")  # still being rated: open
    dataset_id = versions.version_by_id(db, runs.get_run(db, first).dataset_version_id).dataset_id
    assert set(standings.ranked_runs(db, dataset_id, "boss")) == {first, apart}  # open runs wait for closing
    session = sessions.start_session(db, shared, "Sam")
    sessions.record_rating(db, session, session.order[0][0], "A")
    # Sam rates `shared`: its standing (open) and the closed run on the same prompts are hidden.
    assert set(standings.ranked_runs(db, dataset_id, "Sam")) == {apart}
    assert {row["run"] for row in standings.scores_against_base(db, dataset_id, "Sam")} == {apart}
    assert {row["run"] for row in standings.scores_against_base(db, dataset_id, "Riley")} == {first, apart}


def test_an_admin_who_saw_open_results_may_not_then_rate_that_run(rated_db, team_users):
    db = store.connect(rated_db)
    rid = run_id(db)
    export.render(db, rid, "json", "boss")  # an admin reads the open run's results
    with pytest.raises(sessions.RatingError, match="saw run .* results while its rating was open"):
        sessions.start_session(db, rid, "boss")
    with pytest.raises(sessions.RatingError, match="saw run .* results while its rating was open"):
        sessions.start_session(db, rid, "boss")  # the Rate page asks again on every load
    refused = [r for r in store.audit_entries(db) if r["action"] == "rating_refused"]
    # Logged once, not once a page load.
    assert len(refused) == 1 and refused[0]["actor"] == "boss" and "would not be blind" in refused[0]["detail_json"]
    assert sessions.start_session(db, rid, "Riley").rater == "Riley"  # someone who never looked may rate
    sessions.close_rating(db, rid, actor="boss")
    export.render(db, rid, "json", "ana")  # a look after closing is no look at an open outcome
    assert not sessions.saw_open_outcome(db, rid, "ana")


def test_votes_are_frozen_after_the_reveal(rated_db):
    db = store.connect(rated_db)
    rid = run_id(db)
    session = sessions.start_session(db, rid, "Dana")
    while (position := sessions.next_position(db, session)) is not None:
        sessions.record_rating(db, session, position, "A")
    assert sessions.reveal(db, session)
    with pytest.raises(sessions.RatingError, match="can no longer change"):
        sessions.record_rating(db, session, session.order[0][0], "B")
    assert {r.verdict for r in sessions.ratings_for_run(db, rid)} == {"A"}


def test_results_page_tells_a_curious_rater_why_it_shows_nothing(rated_db, team_users):
    db = store.connect(rated_db)
    rid = run_id(db)
    session = sessions.start_session(db, rid, "Sam")
    sessions.record_rating(db, session, session.order[0][0], "A")
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.session_state["studio.user"] = "Sam"
    at.session_state["studio.role"] = "rater"
    at.run()
    at.switch_page("pages/results.py").run()
    assert not at.exception
    assert any("your own session is complete" in i.value for i in at.info)
    assert not at.metric and not [b for b in at.get("download_button")]
    shown = " ".join(str(e.value) for e in at.markdown) + " ".join(str(e.value) for e in at.caption)
    assert "Tuned better" not in shown and "Sam" not in " ".join(str(d.value) for d in at.dataframe)


# ----------------------------------------------------------------------------- sign-in

class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def test_sign_in_backs_off_per_name_and_client_and_the_right_password_works_after(db, team_users):
    users = auth.load_users()
    now = Clock()
    for _ in range(auth.FREE_FAILURES):
        assert auth.sign_in(db, users, "boss", "wrong", "10.0.0.9", clock=now) is None
        now.t += 0.1
    with pytest.raises(auth.SignInRefused, match="Try again in 2 s"):
        auth.sign_in(db, users, "boss", PASSWORD, "10.0.0.9", clock=now)  # this name from this client
    # The same name from a client with no failures, and another name from the failing client, go in.
    assert auth.sign_in(db, users, "boss", PASSWORD, "10.0.0.7", clock=now).role == "admin"
    assert auth.sign_in(db, users, "ana", PASSWORD, "10.0.0.9", clock=now).role == "author"
    now.t += 2.1
    assert auth.sign_in(db, users, "boss", "wrong", "10.0.0.9", clock=now) is None  # one more try, wrong
    with pytest.raises(auth.SignInRefused, match="Try again in 4 s"):  # the wait doubles
        auth.sign_in(db, users, "boss", PASSWORD, "10.0.0.9", clock=now)
    now.t += 4.1
    assert auth.sign_in(db, users, "boss", PASSWORD, "10.0.0.9", clock=now).role == "admin"
    actions = [r["action"] for r in store.audit_entries(db)]
    assert actions.count("sign_in_failed") == auth.FREE_FAILURES + 1
    assert actions.count("sign_in_refused") == 2 and actions[0] == "sign_in"
    assert all(PASSWORD not in r["detail_json"] for r in store.audit_entries(db))


def test_nobody_can_lock_another_person_out(db, team_users):
    users = auth.load_users()
    now = Clock()
    # An attacker fails boss's password once a second from rotating addresses; boss, from her own
    # address with the right password, is let in every time.
    for i in range(24):
        assert auth.sign_in(db, users, "boss", "guess", f"198.51.100.{i}", clock=now) is None
        now.t += 1
        if i % 6 == 5:
            assert auth.sign_in(db, users, "boss", PASSWORD, "10.0.0.7", clock=now).role == "admin"
    # Behind a proxy every client is 127.0.0.1: six failures on a made-up name lock out nobody else.
    for _ in range(auth.FREE_FAILURES):
        assert auth.sign_in(db, users, "nobody", "x", "127.0.0.1", clock=now) is None
    with pytest.raises(auth.SignInRefused):  # the sixth is refused, for that name only
        auth.sign_in(db, users, "nobody", "x", "127.0.0.1", clock=now)
    assert auth.sign_in(db, users, "ana", PASSWORD, "127.0.0.1", clock=now).role == "author"
    assert not db.execute("SELECT count(*) FROM sign_in_failures WHERE user_name = 'ana'").fetchone()[0]


def test_a_name_under_attack_slows_failing_clients_briefly_and_never_for_long(db, team_users):
    users = auth.load_users()
    now = Clock()
    for i in range(auth.NAME_FREE_FAILURES + 1):  # 11 failures on boss, each from a new address
        auth.sign_in(db, users, "boss", "guess", f"198.51.100.{i}", clock=now)
        now.t += 0.5
    assert auth.sign_in(db, users, "boss", "typo", "10.0.0.7", clock=now) is None  # boss's own typo: 12th
    typo_at = now.t
    now.t += 0.1
    # 12 failures on the name: 2 past the free 10, so 2 s * 2^2 = 8 s after this client's own failure.
    with pytest.raises(auth.SignInRefused, match="Try again in 8 s"):
        auth.sign_in(db, users, "boss", PASSWORD, "10.0.0.7", clock=now)
    for i in range(14):  # the attack goes on: 26 failures would mean 2 s * 2^16, capped at 30 s
        auth.sign_in(db, users, "boss", "guess", f"203.0.113.{i}", clock=now)
    with pytest.raises(auth.SignInRefused, match="Try again in 30 s"):
        auth.sign_in(db, users, "boss", PASSWORD, "10.0.0.7", clock=now)
    now.t = typo_at + auth.NAME_BACKOFF_MAX_S + 0.1  # the cap counts from the client's own last failure
    assert auth.sign_in(db, users, "boss", PASSWORD, "10.0.0.7", clock=now).role == "admin"


def test_a_forwarded_address_is_believed_only_from_a_configured_proxy(db, team_users):
    from core.platform import studio_settings

    chain = "203.0.113.5, 198.51.100.7"  # the client wrote the first hop; the proxy appended the second
    assert auth.client_of("127.0.0.1", chain, []) == "127.0.0.1"  # nothing configured: the peer
    assert auth.client_of("127.0.0.1", chain, ["127.0.0.1/32"]) == "198.51.100.7"
    assert auth.client_of("127.0.0.1", chain, ["127.0.0.0/8", "198.51.100.0/24"]) == "203.0.113.5"
    assert auth.client_of("10.0.0.1", chain, ["127.0.0.1/32"]) == "10.0.0.1"  # not a trusted peer
    assert auth.client_of("127.0.0.1", "", ["127.0.0.1/32"]) == "127.0.0.1"
    with pytest.raises(permissions.PermissionDenied):
        studio_settings.set_trusted_proxies(db, ["127.0.0.1"], actor="ana")
    with pytest.raises(ValueError, match="'proxy.local' is not an IP address"):
        studio_settings.set_trusted_proxies(db, ["127.0.0.1", "proxy.local"], actor="boss")
    assert auth.trusted_proxies(db) == []
    assert studio_settings.set_trusted_proxies(db, ["127.0.0.1", " 10.0.0.0/8"], actor="boss") == [
        "127.0.0.1/32", "10.0.0.0/8"]
    assert auth.trusted_proxies(db) == ["127.0.0.1/32", "10.0.0.0/8"]


# ----------------------------------------------------------------------------- erasure

def test_anonymising_erases_the_raw_value_from_every_file_on_disk(db_path, model_dir):
    planted = "quimby.ostrowski@example.org"
    db = store.connect(db_path)
    dataset = datasets.create_dataset(db, "erasure")
    example = examples.save_example(db, dataset, convo(f"Write to {planted} today"), status="ready")
    example = examples.save_example(db, dataset, convo(f"Please write to {planted} today"),
                                    example_id=example.id, status="ready")  # a revision holds it too
    examples.save_example(db, dataset, convo("Ordinary question", "Ordinary answer"), status="ready",
                          split="heldout")
    importing.import_jsonl(db, dataset, f'{{"messages": [{{"role": "user", "content": "{planted}"}}]}}\n'.encode())
    version = versions.freeze(db, dataset, override_reason="frozen before the scan")
    log = processes.run_dir(db, 1) / "train.log"
    log.parent.mkdir(parents=True)
    log.write_text(f"step 1: sample {planted}\n")
    scan.scan_dataset(db, dataset.id)
    found = review.open_findings(db, dataset.id, entity_type="EMAIL_ADDRESS")
    assert found
    review.anonymise(db, [f.id for f in found], method="replace")
    history = review.open_findings(db, dataset.id, status="anonymised")
    assert history and all(f.reason == "replace" for f in history)  # the decision stays visible
    assert {f.id for f in history} <= {f.id for f in review.open_findings(db, dataset.id, status="")}
    assert "<EMAIL_ADDRESS_1>" in examples.get_example(db, example.id).messages[0]["content"]
    assert versions.version_by_id(db, version.id).content_hash != version.content_hash
    db.conn.close()
    needle = planted.encode()
    leaks = [str(p) for p in db_path.parent.rglob("*") if p.is_file() and needle in p.read_bytes()]
    assert leaks == []


def test_an_empty_entity_selection_is_refused():
    with pytest.raises(ValueError, match="at least one entity"):
        scan.PiiConfig(entities=[])
    with pytest.raises(ValueError, match="Deny lists, line 1"):
        scan.config_from_text(["PERSON"], 0.35, "", "not a deny line", "")
    with pytest.raises(ValueError, match="Entity name"):
        scan.config_from_text(["PERSON"], 0.35, "", "[x](http://e.com): word", "")


# ----------------------------------------------------------------------------- sinks

@pytest.mark.parametrize("text,escaped", [
    ("[click](http://evil.example)", r"\[click\]\(http\:\/\/evil\.example\)".replace(r"\/", "/")),
    ("www.evil.example", r"www\.evil\.example"),
    ("a|b", r"a\|b"),
    (":red[alarm]", r"\:red\[alarm\]"),
    ("<img src=x>", r"\<img src\=x\>"),
])
def test_markdown_escaping_known_values(text, escaped):
    assert text_safety.markdown_inline(text) == escaped


def test_ratings_csv_neutralises_formulas_as_a_spreadsheet_reads_them(rated_db):
    db = store.connect(rated_db)
    rid = run_id(db)
    session = sessions.start_session(db, rid, "=cmd|' /C calc'!A0")
    sessions.record_rating(db, session, session.order[0][0], "A", comment='=HYPERLINK("http://evil","x")')
    sessions.record_rating(db, session, session.order[1][0], "B", comment="\t+1 and -2 and @SUM(A1)")
    text = export.render(db, rid, "csv", "admin")
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert all(not c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    assert "'=HYPERLINK(\"http://evil\",\"x\")" in cells


def test_markdown_report_and_charts_keep_user_names_inert(rated_db):
    db = store.connect(rated_db)
    rid = run_id(db)
    session = sessions.start_session(db, rid, "Eve | <a href='http://x'>x</a>")
    sessions.record_rating(db, session, session.order[0][0], "A",
                         scores={"A": {"tone": 4}, "B": {"tone": 2}})
    summary = stats.summarize(db, rid)
    report = export.render(db, rid, "md", "admin", summary)
    row = next(line for line in report.splitlines() if line.startswith("| Eve"))
    assert row.count("|") - row.count("\\|") == 7  # six columns: the name's pipe is escaped
    html = export.render(db, rid, "html", "admin", summary)
    assert "<a href='http://x'>" not in html and "href=\\u0027http" not in html
    figure = charts.agreement_heatmap(summary)
    assert all("<a" not in str(label) for label in figure.data[0].x or [])
    with pytest.raises(datasets.DatasetError, match="Criterion"):
        datasets.update_dataset(db, 1, criteria=["<a href='x'>tone</a>"])


def test_quarantine_messages_show_hostile_roles_as_text(db_path, model_dir):
    db = store.connect(db_path)
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    bad = {"messages": [{"role": "[click](http://evil.example)", "content": "x"},
                        {"role": "assistant", "content": "y"}]}
    importing.import_jsonl(db, datasets.get_dataset(db, 1), (json.dumps(bad) + "\n").encode(),
                          source="[src](http://evil.example).jsonl")
    at.switch_page("pages/author.py").run()
    assert not at.exception
    rendered = [str(e.value) for kind in ("caption", "markdown", "error", "warning", "info", "success")
                for e in at.get(kind)]
    assert not [r for r in rendered if "](http" in r]
    assert any(r"\[src\]" in r for r in rendered)


def test_tracebacks_never_reach_the_browser():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
    assert config["server"]["address"] == "127.0.0.1"
    assert "STUDIO_RAISE_ERRORS" in (REPO / "app.py").read_text()


# ----------------------------------------------------------------------------- import

def test_hostile_lines_are_quarantined_one_by_one(db):
    good = json.dumps({"messages": convo("Where is my order?")})
    lines = [good, "[" * 100_000 + "]" * 100_000,
             '{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "x"}]}',
             '{"messages": [{"role": "user", "content": "hi", "weight": NaN}, {"role": "assistant", "content": "x"}]}',
             json.dumps({"messages": convo("Second good line")})]
    dataset = datasets.create_dataset(db, "hostile")
    report = importing.import_jsonl(db, dataset, "\n".join(lines).encode())
    assert report.imported == 2
    assert [(e.line, e.code) for e in report.errors] == [(2, "too_deep"), (3, "lone_surrogate"),
                                                          (4, "non_standard_number")]
    for line in versions.export_jsonl(db, dataset, current=True).splitlines():
        json.loads(line, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
        line.encode("utf-8")


def test_cli_import_that_fails_leaves_no_empty_dataset(tmp_path):
    big = tmp_path / "big.jsonl"
    with open(big, "wb") as f:
        f.truncate(importing.MAX_IMPORT_BYTES + 1)
    db = tmp_path / "s.db"
    out = subprocess.run([sys.executable, "-m", "core", "--db", str(db), "import", str(big), "--dataset", "fresh"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "limit is 50 MB" in out.stderr
    assert [d.name for d in datasets.list_datasets(store.connect(db))] == []


def test_import_adapter_copies_only_the_adapter_and_refuses_links(rated_db, random_adapter, tmp_path):
    db = store.connect(rated_db)
    version_id = versions.get_version(db, 1).id
    folder = tmp_path / "adapter"
    folder.mkdir()
    for f in random_adapter.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "secrets.txt").write_text("not part of an adapter")
    run = runs.import_adapter(db, folder, version_id)
    copied = sorted(p.name for p in Path(run.adapter_path).iterdir())
    assert "secrets.txt" not in copied and "adapter_config.json" in copied
    (folder / "adapter_model.safetensors").unlink()
    (folder / "adapter_model.safetensors").symlink_to("/etc/hostname")
    with pytest.raises(runs.RunError, match="symbolic link"):
        runs.import_adapter(db, folder, version_id)


def test_a_recreated_database_does_not_reuse_old_run_folders(tmp_path):
    path = tmp_path / "studio.db"
    first = processes.run_dir(store.connect(path), 1)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    assert processes.run_dir(store.connect(path), 1) != first


def test_adding_a_model_needs_an_admin_and_does_not_reveal_which_paths_exist(db, team_users, tmp_path):
    from core.models import registry

    with pytest.raises(permissions.PermissionDenied):
        registry.add_model(db, "/etc", actor="ana")
    messages = []
    for path in (tmp_path / "missing", tmp_path):
        with pytest.raises(registry.ModelUnavailable) as caught:
            registry.add_model(db, str(path), actor="boss")
        messages.append(str(caught.value).replace(str(path), "PATH"))
    assert messages[0] == messages[1]


def test_no_users_file_means_loopback_only():
    makefile = (REPO / "Makefile").read_text()
    assert "ADDRESS ?= 127.0.0.1" in makefile and "--server.address $(ADDRESS)" in makefile
    assert os.environ.get("STUDIO_USERS_FILE", "").endswith("no-users.toml")


# ----------------------------------------------------------------------------- issue 23: lifecycle

KILL_ON_EXAMPLES_INSERT = """
import os, re, runpy, signal, sqlite3, sys
connect = sqlite3.connect
def killing_connect(*args, **kwargs):
    # The process dies the moment it writes examples: after the dataset row, before any commit.
    conn = connect(*args, **kwargs)
    conn.set_trace_callback(lambda sql: re.match(r"\\s*INSERT INTO \\W?examples\\W", sql)
                            and os.kill(os.getpid(), signal.SIGKILL))
    return conn
sqlite3.connect = killing_connect
sys.argv = ["core", *sys.argv[1:]]
runpy.run_module("core", run_name="__main__")
"""


def test_a_cli_import_killed_half_way_leaves_no_empty_dataset(tmp_path, model_dir):
    lines = tmp_path / "ok.jsonl"
    lines.write_text(json.dumps({"messages": convo("Where is my order?", "On its way.")}) + "\n")
    db = tmp_path / "s.db"
    store.connect(db).conn.close()
    out = subprocess.run([sys.executable, "-c", KILL_ON_EXAMPLES_INSERT, "--db", str(db), "import", str(lines),
                          "--dataset", "fresh"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == -9, out.stderr
    assert [d.name for d in datasets.list_datasets(store.connect(db))] == []


def test_a_draft_from_a_held_out_prompt_does_not_block_freezing(db):
    dataset = datasets.create_dataset(db, "leaks")
    examples.save_example(db, dataset, convo("How do I reset my password?", "Use the link."), status="ready")
    held_out = examples.save_example(db, dataset, convo("Can I change my delivery address?", "Yes, until it ships."),
                                     status="ready", split="heldout")
    # "Make this a training example" makes a draft in the training split from a held-out prompt.
    draft = examples.save_example(db, dataset, convo(held_out.messages[0]["content"], "Yes."), status="draft")
    assert examples.leakage(db, dataset.id) == []
    scan.scan_dataset(db, dataset.id)
    check = versions.freeze_check(db, dataset.id)
    assert check.blockers == [] and check.pii_blockers == []
    # Marked ready, the same draft would leak, and freezing is refused.
    examples.save_example(db, dataset, draft.messages, example_id=draft.id, status="ready")
    assert [(p.first_id, p.second_id) for p in examples.leakage(db, dataset.id)] in ([(held_out.id, draft.id)],
                                                                                       [(draft.id, held_out.id)])


# ----------------------------------------------------------------------------- issue 23: smaller sinks

def test_a_dataset_name_with_a_url_is_no_link_in_headings(db_path, model_dir):
    db = store.connect(db_path)
    name = "https://evil.example/login?next=me@evil.example"
    dataset = datasets.create_dataset(db, name)
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.session_state["studio.dataset_id"] = dataset.id
    at.run()
    assert not at.exception
    # Shown as an escaped HTML heading (no Markdown, so nothing autolinks), never in a Markdown element.
    assert [h.value for h in at.html] == ["<h3>https://evil.example/login?next=me@evil.example</h3>"]
    assert not [m.value for m in at.markdown if "evil" in m.value] + [s.value for s in at.subheader]
    at.switch_page("pages/author.py").run()
    assert f"Dataset: {name}" in [t.value for t in at.text]
    assert not [c.value for c in at.caption if "evil" in c.value]


def test_a_rater_name_with_a_comma_is_one_rater_in_the_lineage(rated_db):
    db = store.connect(rated_db)
    rid = run_id(db)
    for rater in ("Lee, Ann", "Bo"):
        session = sessions.start_session(db, rid, rater)
        sessions.record_rating(db, session, session.order[0][0], "A")
    assert stats.summarize(db, rid).lineage["raters"] == ["Bo", "Lee, Ann"]


def test_tables_with_user_text_offer_only_a_neutralised_csv(db_path, model_dir):
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["client"]["disableDataExport"] is True  # Streamlit's own table download is off
    text = text_safety.csv_text([{"actor": '=HYPERLINK("http://evil","x")', "note": "fine"},
                                 {"actor": "@SUM(A1)", "extra": "-2"}])
    assert list(csv.reader(io.StringIO(text))) == [["actor", "note", "extra"],
                                                   ["'=HYPERLINK(\"http://evil\",\"x\")", "fine", ""],
                                                   ["'@SUM(A1)", "", "'-2"]]
    db = store.connect(db_path)
    datasets.create_dataset(db, "formulas", actor='=HYPERLINK("http://evil","x")')
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    at.switch_page("pages/settings.py").run()
    assert not at.exception
    assert [b.label for b in at.download_button if b.key == "settings.audit_csv"] == ["Download CSV"]


def test_finishing_one_run_does_not_reveal_sides_of_a_sibling_still_being_rated(rated_db, random_adapter):
    """Review finding: completing a session on run S revealed which side was the base model while the
    same rater was still rating run R with the same base model and prompts (the base answers are the
    same text), so R was no longer blind. The reveal waits until R's session is complete too."""
    db = store.connect(rated_db)
    first = run_id(db)
    sibling = sibling_run(db, first, random_adapter, same_prompts=True)
    still_rating = sessions.start_session(db, first, "Riley")
    sessions.record_rating(db, still_rating, still_rating.order[0][0], "A")
    done = sessions.start_session(db, sibling, "Riley")
    while (position := sessions.next_position(db, done)) is not None:
        sessions.record_rating(db, done, position, "B")
    with pytest.raises(sessions.RatingError, match=f"You are rating run {first}, which shares its base model"):
        sessions.reveal(db, done)
    while (position := sessions.next_position(db, still_rating)) is not None:
        sessions.record_rating(db, still_rating, position, "A")
    sessions.reveal(db, still_rating)  # complete: this one's identities are revealed ...
    assert {r.position for r in sessions.reveal(db, done)}  # ... and then the sibling's too
