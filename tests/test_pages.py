"""Every page under streamlit.testing's AppTest, seeded through core functions."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from core.curation import datasets, examples, importing
from core.platform import processes, store
from core.rating import sessions
from core.training import runs, versions
from tests.conftest import publish_generations

PAGES = ["pages/home.py", "pages/author.py", "pages/pii_check.py", "pages/train.py", "pages/rate.py",
         "pages/results.py", "pages/playground.py", "pages/settings.py"]
TITLES = {"pages/home.py": "Tuning Studio", "pages/author.py": "Author", "pages/pii_check.py": "PII check",
          "pages/train.py": "Train", "pages/rate.py": "Rate", "pages/results.py": "Results",
          "pages/playground.py": "Playground", "pages/settings.py": "Settings"}


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_a_fresh_studio(db_path, model_dir, page):
    at = app(page)
    assert at.title[0].value == TITLES[page]


def test_home_guides_through_the_loop(db_path, model_dir):
    at = app()
    texts = " ".join(m.value for m in at.markdown)
    assert "95 examples" in texts and "Check PII" in texts
    assert "Next:" in at.info[0].value and "Check PII" in at.info[0].value


def test_author_creates_an_example_in_the_editor(db_path, model_dir):
    at = app("pages/author.py")
    contents = [t for t in at.text_area if t.key and t.key.startswith("author.content.")]
    contents[1].set_value("Where is order HP-1?")
    contents[2].set_value("Category: Shipping\nPriority: P2\nSummary: Order HP-1 is late.\nReply: Trace it.")
    at.run()
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception
    assert any("Saved example" in s.value for s in at.success)
    db = store.connect(db_path)
    example = examples.list_examples(db, 1, examples.ExampleFilter(text="HP-1?"))[0][0]
    assert example.status == "draft" and example.author == "Dana"


def test_user_text_is_never_rendered_as_markdown_or_html(db_path, model_dir):
    db = store.connect(db_path)
    at = app()
    evil = "<script>alert(1)</script> ![x](http://example.com/x.png) [click](javascript:alert(1))"
    dataset = datasets.create_dataset(db, "evil ![img](http://example.com/i.png)")
    example = examples.save_example(db, dataset, [{"role": "user", "content": evil},
                                                  {"role": "assistant", "content": evil}])
    at.session_state["studio.dataset_id"] = dataset.id
    at.session_state["author.editing_id"] = example.id
    at.switch_page("pages/author.py").run()
    assert not at.exception
    code_blocks = [c.value for c in at.code]
    assert any(evil in c for c in code_blocks)  # shown verbatim as text
    # Every element that renders Markdown: the name and the text must arrive escaped.
    rendered = [str(e.value) for kind in ("markdown", "caption", "title", "header", "subheader", "info", "warning",
                                          "error", "success") for e in at.get(kind)]
    plain = [str(e.value) for e in at.get("text")]  # st.text: shown as typed, never Markdown
    assert any("evil" in r for r in rendered + plain)
    for text in rendered:
        assert "<script>" not in text and "](http" not in text and "![" not in text, text


def test_pii_page_scans_and_shows_findings(db_path, model_dir):
    db = store.connect(db_path)
    at = app("pages/pii_check.py")
    dataset = datasets.get_dataset(db, 1)
    examples.save_example(db, dataset, [{"role": "user", "content": "Email me at kim.lee@example.com"},
                                        {"role": "assistant", "content": "Noted."}])
    next(b for b in at.button if b.label == "Scan now").click().run()
    assert not at.exception
    assert any("Scanned" in s.value for s in at.success)
    assert any("⟦kim.lee@example.com⟧" in c.value for c in at.code)


def test_pii_review_by_value_decides_every_occurrence_at_once(db_path, model_dir):
    db = store.connect(db_path)
    at = app("pages/pii_check.py")
    dataset = datasets.get_dataset(db, 1)
    for text in ("Please write to kim.lee@example.com", "kim.lee@example.com again", "Still waiting, kim.lee@example.com"):
        examples.save_example(db, dataset, [{"role": "user", "content": text}, {"role": "assistant", "content": "Ok."}],
                              status="ready")
    next(b for b in at.button if b.label == "Scan now").click().run()
    # The demo's product names are its vocabulary (glossary + guidelines), which the studio confirmed
    # when it seeded the demo: cleared, so nothing is left to suggest.
    assert next(m for m in at.metric if m.label == "Vocabulary suggestions").value == "0"
    assert any("1 distinct value(s), 3 occurrence(s)" in m.value for m in at.markdown), [m.value for m in at.markdown]
    next(b for b in at.button if b.label == "Anonymise in 3 example(s)").click().run()
    assert not at.exception
    assert next(m for m in at.metric if m.label == "Open findings").value == "0"
    assert any("anonymised everywhere" in c.value for c in at.code)
    assert not list(db.query("SELECT id FROM examples WHERE messages_json LIKE '%kim.lee%'"))


def test_train_page_shows_estimate_for_a_frozen_version(db_path, model_dir):
    from core.pii import scan

    db = store.connect(db_path)
    at = app()
    scan.scan_dataset(db, 1)
    versions.freeze(db, datasets.get_dataset(db, 1))
    at.switch_page("pages/train.py").run()
    assert not at.exception
    labels = {m.label: m.value for m in at.metric}
    assert labels["Optimizer steps"] == "114"  # the demo's 75 examples: 38 batches of 2, 3 epochs
    assert "Training tokens" in labels


def test_rate_page_hides_identities_until_the_session_is_complete(rated_db):
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    at.switch_page("pages/rate.py").run()
    assert not at.exception
    db = store.connect(rated_db)
    run_id = runs.list_runs(db)[0].id
    session = sessions.start_session(db, run_id, "Dana")

    def visible_text() -> str:
        parts = [e.value for kind in ("markdown", "code", "caption", "text", "info", "warning")
                 for e in getattr(at, kind) if isinstance(e.value, str)]
        parts += [b.label for b in at.button] + [json.dumps({k: str(at.session_state[k]) for k in at.session_state})]
        return " ".join(parts).lower()

    total = sessions.progress(db, session)[1]
    for _ in range(total):
        text = visible_text()
        assert "base" not in text and "tuned" not in text
        assert "answer a" in text and "answer b" in text
        next(b for b in at.button if b.label == "Tie").click().run()
        assert not at.exception
    assert sessions.progress(db, session) == (total, total)
    assert any("identities revealed" in s.value for s in at.success)


def test_results_page_summarises_ratings(rated_db):
    db = store.connect(rated_db)
    run_id = runs.list_runs(db)[0].id
    session = sessions.start_session(db, run_id, "Dana")
    for position, left in session.order:
        sessions.record_rating(db, session, position, "A" if left == "tuned" else "B")
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    at.switch_page("pages/results.py").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics[f"Prompts: run {run_id} better"] == str(len(session.order)) and metrics["Win rate (prompts)"] == "100%"
    assert metrics["Prompts: both bad"] == "0"
    assert "better than the base model" in at.info[0].value and "valid however often you look" in at.info[0].value


def test_settings_saves_the_team(db_path, model_dir):
    at = app("pages/settings.py")
    at.text_area[0].set_value("Ana\nBen")
    next(b for b in at.button if b.label == "Save team").click().run()
    assert not at.exception
    from core.platform import auth

    assert auth.team(store.connect(db_path)) == ["Ana", "Ben"]


def test_password_gate_with_roles(db_path, model_dir, tmp_path, monkeypatch):
    from core.platform import auth

    users = tmp_path / "users.toml"
    users.write_text(auth.add_user_line("ana", "admin", "s3cret") + auth.add_user_line("raj", "rater", "pw"))
    monkeypatch.setenv("STUDIO_USERS_FILE", str(users))
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    assert at.title[0].value == "Tuning Studio" and not at.metric  # only the sign-in form
    at.text_input[0].set_value("ana")
    at.text_input[1].set_value("wrong")
    at.button[0].click().run()
    assert "wrong password" in at.error[0].value
    at.text_input[1].set_value("s3cret")
    at.button[0].click().run()
    assert at.session_state["studio.user"] == "ana" and at.session_state["studio.role"] == "admin"
    assert "s3cret" not in users.read_text()


def test_a_link_opens_exactly_that_dataset_and_run(rated_db):
    db = store.connect(rated_db)
    run_id = runs.list_runs(db)[0].id
    other = datasets.create_dataset(db, "Second dataset")
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.query_params["dataset"] = str(other.id)
    at.run()
    at.switch_page("pages/rate.py").run()
    assert not at.exception
    assert at.session_state["studio.dataset_id"] == other.id
    assert any("No finished run yet" in i.value for i in at.info)
    linked = AppTest.from_file("../app.py", default_timeout=120)
    linked.query_params["dataset"] = "1"
    linked.query_params["run"] = str(run_id)
    linked.run()
    linked.switch_page("pages/rate.py").run()
    assert not linked.exception
    assert linked.session_state["rate.run_id"] == run_id and linked.query_params["run"] == str(run_id)


def test_new_example_starts_empty_and_edit_opens_the_editor(db_path, model_dir):
    at = app("pages/author.py")
    db = store.connect(db_path)
    datasets.update_dataset(db, 1, system_prompt="You triage tickets.")
    next(b for b in at.button if b.label == "New example").click().run()
    contents = [t for t in at.text_area if t.key and t.key.startswith("author.content.")]
    assert [t.value for t in contents] == ["You triage tickets.", "", ""]  # the dataset's system prompt
    contents[1].set_value("Where is order HP-2?")
    contents[2].set_value("Category: Shipping\nPriority: P2\nSummary: HP-2 is late.\nReply: Trace it.")
    at.run()
    next(b for b in at.button if b.label == "Save").click().run()
    next(b for b in at.button if b.label == "New example").click().run()
    assert not at.exception
    contents = [t for t in at.text_area if t.key and t.key.startswith("author.content.")]
    assert [t.value for t in contents] == ["You triage tickets.", "", ""]  # not the previous example's text
    first = examples.list_examples(db, 1, limit=1)[0][0]
    picker = next(s for s in at.selectbox if s.label == "Open in editor")
    picker.set_value(first.id).run()
    next(b for b in at.button if b.label == "Edit").click().run()
    assert at.session_state["author.tab"] == "Editor" and at.session_state["author.editing_id"] == first.id
    contents = [t for t in at.text_area if t.key and t.key.startswith("author.content.")]
    assert [t.value for t in contents] == [m["content"] for m in first.messages]


def test_a_quarantined_line_is_fixed_in_the_turn_editor(db_path, model_dir):
    db = store.connect(db_path)
    at = app("pages/author.py")
    bad = {"messages": [{"role": "customer", "content": "Where is HP-9?"}]}  # wrong role, no answer
    importing.import_jsonl(db, datasets.get_dataset(db, 1), (json.dumps(bad) + "\n").encode(), source="fix.jsonl")
    at.run()
    quarantined = importing.list_quarantine(db, 1)[-1]
    role = next(s for s in at.selectbox if s.key == f"author.qrole.{quarantined['id']}.0")
    role.set_value("user").run()
    next(b for b in at.button if b.key == f"author.qadd.{quarantined['id']}").click().run()
    answer = next(t for t in at.text_area if t.key == f"author.qcontent.{quarantined['id']}.1")
    answer.set_value("Category: Shipping\nPriority: P2\nSummary: HP-9 is late.\nReply: Trace it.").run()
    next(b for b in at.button if b.key == f"author.qfix.{quarantined['id']}").click().run()
    assert not at.exception
    assert not [q for q in importing.list_quarantine(db, 1) if q["id"] == quarantined["id"]]
    fixed = examples.list_examples(db, 1, examples.ExampleFilter(text="HP-9?"))[0][0]
    assert [m["role"] for m in fixed.messages] == ["user", "assistant"]


def test_raters_see_the_reference_answer_only_when_an_admin_turns_it_on(rated_db):
    from core.platform import studio_settings
    from core.rating import pairs as answer_pairs

    db = store.connect(rated_db)
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    at.switch_page("pages/rate.py").run()
    assert not [e for e in at.expander if "Reference answer" in e.label]
    studio_settings.set_show_reference(db, True)
    at.run()
    assert [e for e in at.expander if "Reference answer" in e.label]
    references = {p.reference for p in answer_pairs.pairs(db, runs.list_runs(db)[0].id)}
    assert any(c.value in references for c in at.code)


def second_run_with_pairs(db, first: int) -> int:
    """Another finished run whose answer pairs sit at other positions than the first run's."""
    from core.platform import permissions
    from core.rating import pairs as answer_pairs

    source = runs.get_run(db, first)
    second = runs.import_adapter(db, source.adapter_path, source.dataset_version_id, actor=permissions.SYSTEM_ACTOR).id
    with store.transaction(db):
        for pair in answer_pairs.pairs(db, first):
            for side, text in (("base", pair.base_text), ("tuned", pair.tuned_text + " (second)")):
                db.table("generations").insert({
                    "run_id": second, "position": pair.position + 100, "prompt_json": json.dumps(pair.prompt),
                    "reference": pair.reference, "side": side, "text": text, "settings_json": "{}",
                    "created_at": store.now()})
    publish_generations(db, second)
    return second


def test_switching_runs_on_the_rate_page_keeps_each_sessions_place(rated_db):
    db = store.connect(rated_db)
    first = runs.list_runs(db)[0].id
    second = second_run_with_pairs(db, first)
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    at.switch_page("pages/rate.py").run()

    def pick(run_id: int) -> None:
        next(s for s in at.selectbox if s.label == "Run").set_value(run_id).run()
        assert not at.exception, [e.message for e in at.exception]

    def place(run_id: int) -> tuple[int, int]:
        session = sessions.start_session(db, run_id, "Dana")
        return session.id, at.session_state[f"rate.{session.id}.position"]

    pick(first)
    next(b for b in at.button if b.label == "Skip for now").click().run()
    first_session, skipped_to = place(first)
    assert skipped_to == sessions.next_position(db, sessions.start_session(db, first, "Dana"),
                                                skipped={sessions.start_session(db, first, "Dana").order[0][0]})
    pick(second)  # before: the first run's position was looked up in this session (KeyError)
    second_session, position = place(second)
    assert position in dict(sessions.start_session(db, second, "Dana").order) and position >= 100
    pick(first)  # back again: still where this session was, the skip remembered
    assert place(first) == (first_session, skipped_to)
    assert at.session_state[f"rate.{first_session}.skipped"] and not at.session_state[f"rate.{second_session}.skipped"]
    assert "rate.session_id" not in at.session_state and not hasattr(sessions, "get_session")  # dead state gone


def test_run_pickers_ask_which_runs_have_pairs_and_votes_in_one_query(rated_db):
    from core.rating import pairs as answer_pairs

    db = store.connect(rated_db)
    first = runs.list_runs(db)[0].id
    second = second_run_with_pairs(db, first)
    bare = runs.import_adapter(db, runs.get_run(db, first).adapter_path, runs.get_run(db, first).dataset_version_id).id
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    assert answer_pairs.runs_with_pairs(db, [first, second, bare]) == {first, second}
    assert sessions.rated_runs(db, [first, second, bare]) == set()
    assert len(statements) == 2  # one query each, however many runs
    db.conn.set_trace_callback(None)
    session = sessions.start_session(db, second, "Dana")
    sessions.record_rating(db, session, session.order[0][0], "A")
    assert sessions.rated_runs(db, [first, second, bare]) == {second}
def live_run(db_path, estimated_s: float = 600):
    """A frozen demo version and a run that this test process claims (so it counts as alive)."""
    import os

    from core.curation import demo
    from core.pii import scan

    db = store.connect(db_path)
    demo.seed_demo(db)
    scan.scan_dataset(db, 1)
    version = versions.freeze(db, datasets.get_dataset(db, 1))
    run = runs.start_run(db, version, preset="smoke-test", launch=False, estimated_s=estimated_s)
    assert runs.claim_run(db, run.id, processes.ProcessId.of(os.getpid()))
    runs.record_progress(db, run.id, {"step": 1, "loss": 2.5}, {"total_steps": 30})
    return db, version, run


def test_train_reload_during_a_run_opens_the_run_and_cancel_takes_effect_and_stays_confirmed(db_path, model_dir):
    db, version, running = live_run(db_path)
    finished = runs.start_run(db, version, preset="smoke-test", launch=False, allow_duplicate=True)
    runs.cancel_run(db, finished.id)  # a newer, finished run: the live one must still open first
    at = app("pages/train.py")
    # Issue 25 item 6: a reload lands on the running run, not on "New run", and the URL says so.
    assert at.session_state["tab"] == "Runs"
    assert at.session_state["train.run_id"] == running.id and at.query_params["run"] == str(running.id)
    assert any(m.label == "Status" and m.value == "running" for m in at.metric)
    assert "train loss" in at.dataframe[-1].value.columns
    assert "2.500" in at.dataframe[-1].value["train loss"].tolist()  # the latest step's loss while running
    progress = " ".join(str(p.proto.text) for p in at.get("progress"))
    assert "pre-launch estimate" in progress and "finishes around" in progress
    # Item 2: the click is applied by a callback and confirmed from the database on every refresh.
    at.button(key=f"train.cancel.{running.id}").click().run()
    assert not at.exception
    assert runs.get_run(db, running.id).cancel_requested
    assert any(i.value.startswith("Cancelling — stops at the next step") for i in at.info)
    at.run()  # the panel refreshes
    assert any(i.value.startswith("Cancelling — stops at the next step") for i in at.info)
    assert at.button(key=f"train.cancel.{running.id}").disabled


def test_train_stays_on_the_run_when_it_finishes(db_path, model_dir):
    """A run watched on the Runs tab finishes: the page keeps showing it (its card), instead of jumping to
    "New run" because the tabs' default (Runs while a run is live) changed (found by the issue 28 journey)."""
    db, _version, running = live_run(db_path)
    at = app("pages/train.py")
    assert at.session_state["tab"] == "Runs"
    runs.finish_run(db, runs.get_run(db, running.id), {"status": "succeeded", "metrics_json": json.dumps(
        {"duration_s": 30.0, "steps": 1, "train_examples": 8})}, "")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state["tab"] == "Runs"
    assert any(m.label == "Status" and m.value == "succeeded" for m in at.metric)
    card = " ".join(m.value for m in at.markdown).replace("\\", "")  # text arrives Markdown-escaped
    assert "**Why it stopped:** It completed its planned steps." in card


def test_train_url_tab_and_run_are_kept(db_path, model_dir):
    db, version, running = live_run(db_path)
    other = runs.start_run(db, version, preset="smoke-test", launch=False, allow_duplicate=True)
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.query_params["tab"] = "Compare"
    at.run()
    at.switch_page("pages/train.py").run()
    assert at.session_state["tab"] == "Compare"
    linked = AppTest.from_file("../app.py", default_timeout=120)
    linked.query_params["tab"] = "Runs"
    linked.query_params["run"] = str(other.id)
    linked.run()
    linked.switch_page("pages/train.py").run()
    assert linked.session_state["train.run_id"] == other.id


def test_a_finished_run_reads_as_a_card_with_the_raw_log_behind_technical_details(db_path, model_dir):
    db, _version, run = live_run(db_path)
    metrics = {"train_loss": 1.1, "eval_loss": 1.4, "duration_s": 95.0, "tokens_per_s": 80.2, "steps": 30,
               "train_examples": 76, "time_to_format_s": None, "stopped_early": None}
    log = "/x.py:3: FutureWarning: old\n  warnings.warn(x)\n 50%|█████     | 15/30 [00:40<00:40]\nsaved adapter\n"
    runs.record_progress(db, run.id, {"step": 30, "loss": 0.9}, {})
    runs.finish_run(db, runs.get_run(db, run.id), {"status": "succeeded", "metrics_json": json.dumps(metrics)}, log)
    at = app("pages/train.py")
    at.query_params["tab"] = "Runs"
    at.session_state["tab"] = "Runs"
    at.run()
    card = " ".join(m.value for m in at.markdown).replace("\\", "")  # text arrives Markdown-escaped
    assert "**What it learnt:** Its training loss fell from 2.50 to 0.90" in card
    assert "**Why it stopped:** It completed its planned steps." in card
    assert not at.json  # no raw JSON with nulls
    labels = [e.label for e in at.expander]
    assert "Technical details" in labels and "Log tail" not in labels
    assert [c.value for c in at.code] == ["saved adapter"]


def test_author_new_dataset_form_closes_and_the_shared_system_prompt_is_offered(db_path, model_dir):
    at = app("pages/author.py")
    name = next(t for t in at.text_input if t.label == "Name")
    name.set_value("Intake")
    next(t for t in at.text_area if t.label == "What should the model learn?").set_value("Triage e-mails")
    next(b for b in at.button if b.label == "Create dataset").click().run()
    assert not at.exception
    assert any("Created dataset Intake" in s.value for s in at.success)
    assert at.session_state["author.new_dataset_open"] is False  # the form closed
    db = store.connect(db_path)
    dataset = datasets.get_dataset(db, "Intake")
    lines = "\n".join(json.dumps({"messages": [{"role": "system", "content": "You triage intake e-mails."},
                                               {"role": "user", "content": f"Mail {i}"},
                                               {"role": "assistant", "content": "Matter: new"}]}) for i in range(5))
    importing.import_jsonl(db, dataset, lines.encode(), source="intake.jsonl")
    at.run()
    assert any(i.value.startswith("5 of 5 examples share this system prompt") for i in at.info)
    at.button(key="author.use_system_prompt.settings").click().run()
    assert not at.exception
    assert datasets.get_dataset(db, dataset.id).system_prompt == "You triage intake e-mails."
    assert not any("share this system prompt" in i.value for i in at.info)
