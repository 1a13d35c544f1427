"""The whole journey in real headless Chromium: import → fix → author → PII → freeze → train →
generate → rate blind as two raters → results → HTML report. Screenshots feed the README tour."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from core.curation import datasets, examples, importing
from core.pii import review
from core.platform import store
from core.rating import pairs as answer_pairs
from core.training import runs
from tests.browser import (
    Guard,
    anonymise_every_value,
    choose,
    click,
    go,
    launch_chromium,
    nav,
    next_pair_or_done,
    require_chromium,
    running_studio,
    settle,
    shot,
    tab,
    vote,
)

DATA = Path(__file__).resolve().parent / "data"
EVIL = "<script>alert('xss')</script> <img src=http://203.0.113.9/x.png> ![t](http://203.0.113.9/t.png)"

pytestmark = pytest.mark.browser


_T0 = [time.time()]


def mark(step: str) -> None:
    print(f"[journey] step {step} at {time.time() - _T0[0]:.0f}s", flush=True)


@pytest.fixture
def chromium():
    with launch_chromium(require_chromium()) as browser:
        yield browser


def test_whole_journey(tmp_path, model_dir, chromium):
    db_file = tmp_path / "studio.db"
    guard = Guard()
    with running_studio(db_file) as url:
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        guard.attach(page)

        mark("0")
        # 0. A deep link on a freshly started server goes through the router to its page (issue 25).
        go(page, url, "author")
        page.get_by_role("heading", name="Author").first.wait_for()
        go(page, url, "home")
        page.get_by_text("Next:").wait_for()
        shot(page, "00-home")

        mark("1")
        # 1. A new dataset, imported with bad lines; one fixed in quarantine.
        go(page, url, "author")
        page.locator("summary", has_text="New dataset").click()
        page.get_by_label("Name").wait_for(state="visible")
        page.get_by_label("Name").fill("Journey support")
        click(page, "Create dataset")
        tab(page, "Import")
        page.get_by_role("region", name="JSONL file").locator("input[type=file]").set_input_files(str(DATA / "journey_train.jsonl"))
        settle(page)
        click(page, "Import")
        page.get_by_text("Imported 10; 2 quarantined").wait_for()
        shot(page, "01-import-report")
        tab(page, "Quarantine")
        # The line without an answer opens in the turn editor: add the answer, re-validate.
        click(page, "+ Assistant answer")
        answer = page.get_by_label("Content", exact=True).filter(visible=True).nth(1)
        answer.fill("Category: Shipping\nPriority: P2\nSummary: HP-777 is late.\nReply: Trace it.")
        page.keyboard.press("Control+Enter")
        settle(page)
        click(page, "Re-validate and import")
        shot(page, "02-quarantine")
        tab(page, "Import")
        page.get_by_role("region", name="JSONL file").locator("input[type=file]").set_input_files(str(DATA / "journey_heldout.jsonl"))
        settle(page)
        choose(page, "Import into split", "heldout")
        click(page, "Import")
        page.get_by_text("Imported 3;").wait_for()

        mark("2")
        # 2. Author a new example in the editor (with hostile text, shown inert).
        tab(page, "Editor")
        contents = page.get_by_label("Content").filter(visible=True)
        contents.nth(-2).fill(f"Quick one: {EVIL} where is order HP-610?")
        contents.nth(-1).fill("Category: Shipping\nPriority: P3\nSummary: Customer asks where HP-610 is.\nReply: Share the tracking link.")
        page.keyboard.press("Control+Enter")
        settle(page)
        choose(page, "Status", "ready")
        click(page, "Save")
        try:
            page.get_by_text(re.compile(r"Saved example \d+")).wait_for()
        except Exception:
            shot(page, "debug-save")
            raise
        shot(page, "03-editor")

        db = store.connect(db_file)
        journey = datasets.get_dataset(db, "Journey support")
        assert examples.list_examples(db, journey.id)[1] == 15  # 10 + 1 fixed + 3 held-out + 1 authored
        assert len(importing.list_quarantine(db, journey.id)) == 1

        mark("3")
        # 3. PII: scan and anonymise the e-mail address.
        nav(page, "PII check")
        click(page, "Scan now")
        try:
            page.get_by_text("dana.rivera@example.com").first.wait_for()
        except Exception:
            shot(page, "debug-pii")
            raise
        shot(page, "04-pii-review")
        # Review by value: one decision per distinct value covers all of its occurrences.
        anonymise_every_value(page, 10)
        assert "dana.rivera" not in db.execute("SELECT group_concat(messages_json) FROM examples").fetchone()[0]

        mark("4")
        # 4. Freeze.
        nav(page, "Author")
        tab(page, "Versions & export")
        click(page, "Freeze a version")
        try:
            page.get_by_text("Version 1 frozen").wait_for()
        except Exception:
            shot(page, "debug-freeze")
            raise

        mark("5")
        # 5. Train a short run in the background and watch it finish.
        nav(page, "Train")
        choose(page, "Preset", "smoke-test")
        shot(page, "05-train-estimate")
        click(page, "Start training")
        page.get_by_text(re.compile(r"Run \d+ queued")).wait_for()
        tab(page, "Runs")
        page.get_by_test_id("stMetricValue").filter(has_text=re.compile(r"running|queued|succeeded")).first.wait_for()
        shot(page, "06-train-live")
        # Leave the live view while the run trains: on 2 cores a browser repainting charts
        # competes with the trainer. The run goes on regardless of the page.
        tab(page, "New run")
        deadline = time.time() + 300
        while time.time() < deadline:
            run = runs.list_runs(db)[0]
            if run.finished:
                break
            page.wait_for_timeout(2000)
        assert run.status == "succeeded", run.error
        tab(page, "Runs")
        page.wait_for_timeout(4500)  # the live fragment polls every 4 s
        page.get_by_test_id("stMetricValue").filter(has_text="succeeded").first.wait_for()
        shot(page, "06-train-done")

        mark("6")
        # 6. Generate the answer pairs.
        nav(page, "Rate")
        page.get_by_label("Max new tokens").fill("24")
        click(page, "Generate answer pairs")
        deadline = time.time() + 300
        while time.time() < deadline and (job := answer_pairs.latest_job(db, run.id)) and job.status in ("queued", "running"):
            page.wait_for_timeout(2000)
        assert answer_pairs.latest_job(db, run.id).status == "succeeded"
        assert len(answer_pairs.pairs(db, run.id)) == 3

        mark("7")
        # 7. Two raters in two browser contexts, blind; each pair is rated by both.
        store.set_setting(db, "raters_per_pair", "2")
        curious = True
        for rater in ("Dana", "Sam"):
            other = chromium.new_context(viewport={"width": 1400, "height": 1000})
            rater_page = other.new_page()
            guard.attach(rater_page)
            go(rater_page, url, "rate")
            choose(rater_page, "Dataset", "Journey support")
            choose(rater_page, "You are", rater)
            for _ in range(10):
                if next_pair_or_done(rater_page):
                    break
                html = rater_page.content().lower()
                body = rater_page.locator("section.main, [data-testid='stMain']").first.inner_text().lower()
                assert "tuned" not in body and "base model" not in body, "identity visible before the vote"
                assert "answer a" in body and "answer b" in body
                assert "left_side" not in html
                if rater == "Dana":
                    shot(rater_page, "07-rate-blind")
                vote(rater_page, "A is better" if rater == "Dana" else "Tie")
                if rater == "Sam" and curious:
                    # A curious rater: one vote in, they try Results and its exports. Refused.
                    curious = False
                    nav(rater_page, "Results")
                    rater_page.get_by_text("your own session is complete").wait_for()
                    main = rater_page.locator("[data-testid='stMain']").first.inner_text()
                    assert "Tuned better" not in main and "Download" not in main
                    nav(rater_page, "Rate")
            rater_page.get_by_text("Your session is complete").wait_for()
            other.close()
        assert db.execute("SELECT count(DISTINCT rater) FROM ratings").fetchone()[0] == 2

        mark("8")
        # 8. Results and the HTML report, opened offline.
        nav(page, "Results")
        page.get_by_text("Tuned better").first.wait_for()
        shot(page, "08-results")
        with page.expect_download() as download:
            page.get_by_role("button", name="Download HTML").click()
        report = tmp_path / "report.html"
        download.value.save_as(report)
        report_page = context.new_page()
        guard.attach(report_page)
        report_page.goto(report.as_uri())
        report_page.get_by_text("does the tuned model answer better?").first.wait_for()
        assert report_page.locator(".bar").count() == 1 and report.stat().st_size < 100_000  # no plotly.js
        context.close()

    assert guard.dialogs == [], "a script from user content ran"
    assert guard.outside == [], f"requests left loopback: {guard.outside}"


def test_a_team_rater_is_refused_pii_decisions(tmp_path, model_dir, chromium, users_toml):
    """With a users file: sign-in (a wrong password first), then a rater tries the PII review."""
    from core.curation import demo
    from core.pii import scan
    from core.platform.permissions import SYSTEM_ACTOR
    from tests.conftest import PASSWORD

    db_file = tmp_path / "studio.db"
    db = store.connect(db_file)
    dataset = demo.seed_demo(db)
    examples.save_example(db, dataset, [{"role": "user", "content": "Mail lee.hart@example.org please"},
                                        {"role": "assistant", "content": "Noted."}], status="ready",
                          author=SYSTEM_ACTOR)
    scan.scan_dataset(db, dataset.id, actor=SYSTEM_ACTOR)
    assert review.gate_status(db, dataset.id).open_findings >= 1
    guard = Guard()
    with running_studio(db_file, {"STUDIO_USERS_FILE": str(users_toml)}) as url:
        page = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        guard.attach(page)
        page.goto(url)
        page.get_by_label("User name").fill("Sam")
        page.get_by_role("textbox", name="Password").fill("not the password")
        click(page, "Sign in")
        page.get_by_text("Unknown user or wrong password.").wait_for()
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        click(page, "Sign in")
        page.get_by_text("Signed in as").wait_for()
        nav(page, "PII check")
        from playwright.sync_api import expect

        expect(page.get_by_role("textbox", name="Not personal data in this dataset, because").first).to_be_disabled()
        page.get_by_role("tab", name="Review by occurrence").click()
        settle(page)
        page.get_by_text("needs the admin role").first.wait_for()
        assert page.get_by_role("button", name="Dismiss all listed").is_disabled()
        assert page.get_by_label("Not PII because").first.is_disabled()
        before = review.gate_status(db, dataset.id).open_findings
        page.get_by_role("tab", name="Detection settings").click()
        settle(page)
        click(page, "Save settings (new version)")
        page.get_by_text("may not pii settings").wait_for()
        assert review.gate_status(db, dataset.id).open_findings == before
        assert db.execute("SELECT count(*) FROM audit_log WHERE actor = 'Sam' AND action LIKE 'pii%'").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'sign_in_failed'").fetchone()[0] == 1
    assert guard.outside == [], f"requests left loopback: {guard.outside}"


def test_the_first_deep_link_after_a_start_keeps_its_page_and_parameters(tmp_path, model_dir, chromium):
    """Issue 25 item 10: /train?... as the very first request used to show Home under a /train URL."""
    with running_studio(tmp_path / "studio.db") as url:
        page = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(f"{url}/train?dataset=1&tab=Compare")
        page.get_by_role("heading", name="Train").first.wait_for(timeout=120_000)
        settle(page)
        assert "/train" in page.url and "dataset=1" in page.url and "tab=Compare" in page.url
        page.get_by_text("Runs to compare").first.wait_for()
        assert page.get_by_role("heading", name="Tuning Studio").count() == 0


def test_cancel_on_a_live_refreshing_run_stops_it(tmp_path, model_dir, chromium):
    """Issue 25 items 2 and 6: reloading Train during a run opens that run; Cancel, clicked while the
    panel refreshes itself, confirms at once and the run stops."""
    from core.curation import demo
    from core.pii import scan
    from core.training import config as training_config
    from core.training import versions

    db_file = tmp_path / "studio.db"
    db = store.connect(db_file)
    dataset = demo.seed_demo(db)
    scan.scan_dataset(db, dataset.id)
    version = versions.freeze(db, dataset)
    config = training_config.PRESETS["smoke-test"].with_overrides({"max_steps": "400"})
    run = runs.start_run(db, version, preset="smoke-test", config=config, launch=False)
    with running_studio(db_file) as url:  # the studio starts the waiting run
        page = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(f"{url}/train?dataset={dataset.id}")
        page.get_by_role("heading", name="Train").first.wait_for(timeout=120_000)
        deadline = time.time() + 600
        while not runs.run_events(db, run.id):  # the worker loads the model, then steps
            assert time.time() < deadline, runs.get_run(db, run.id)
            time.sleep(2)
        page.reload()
        page.get_by_text(re.compile(r"elapsed ·")).first.wait_for(timeout=120_000)  # the live panel, open first
        assert f"run={run.id}" in page.url
        assert not page.get_by_role("button", name="Start training").is_visible()  # not the "New run" tab
        page.wait_for_timeout(5_000)  # let the panel refresh itself a couple of times
        page.get_by_role("button", name="Cancel").click()
        page.get_by_text("Cancelling — stops at the next step").first.wait_for(timeout=30_000)
        assert runs.get_run(db, run.id).cancel_requested
        while runs.get_run(db, run.id).status == "running":
            assert time.time() < deadline
            time.sleep(2)
        stopped = runs.get_run(db, run.id)
        assert stopped.status == "cancelled" and stopped.metrics["steps"] < 400


def test_trust_probes_a_signature_erased_and_a_rater_refused_sibling_base_answers(tmp_path, model_dir, chromium,
                                                                                   users_toml, random_adapter):
    """Issue 23's "Done when" probes, in the browser with a team: (a) a name at the start of a line
    (a signature) anonymised on the PII check page is gone from every file of the data folder and
    every TEXT column; (b) Sam, mid-session on run R, is refused R's base answers through the
    playground and through the Results and downloads of a closed run sharing R's base model and prompts."""
    from playwright.sync_api import expect

    from core.pii import erasure
    from core.platform.permissions import SYSTEM_ACTOR
    from core.rating import sessions
    from core.training import versions
    from tests.conftest import PASSWORD, hand_run

    signature = "Jane Doe"
    db_file = tmp_path / "studio.db"
    db = store.connect(db_file)
    dataset = datasets.create_dataset(db, "signed tickets", actor=SYSTEM_ACTOR)
    for text, split in ((f"Thanks for the quick help.\n{signature}", "train"), ("Where is my parcel?", "train"),
                        ("Can I change my delivery address?", "heldout")):
        examples.save_example(db, dataset, [{"role": "user", "content": text}, {"role": "assistant", "content": "Noted."}],
                              status="ready", split=split, author=SYSTEM_ACTOR)
    # Frozen before the scan, so the signature sits in a version's content too.
    version = versions.freeze(db, dataset, actor=SYSTEM_ACTOR, override_reason="frozen before the scan")
    prompts = ["Where is my parcel?", "Can I change my delivery address?", "Why was I charged twice?"]
    rated = hand_run(db, version.id, random_adapter, prompts)
    closed = hand_run(db, version.id, random_adapter, prompts)
    sessions.close_rating(db, closed, actor="boss")
    guard = Guard()
    with running_studio(db_file, {"STUDIO_USERS_FILE": str(users_toml)}) as url:
        def sign_in(name: str):
            page = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            guard.attach(page)
            page.goto(url)
            page.get_by_label("User name").fill(name)
            page.get_by_role("textbox", name="Password").fill(PASSWORD)
            click(page, "Sign in")
            page.get_by_text("Signed in as").wait_for()
            return page

        # (a) The admin scans and anonymises every value the scan lists, the signature among them.
        page = sign_in("boss")
        nav(page, "PII check")
        click(page, "Scan now")
        page.get_by_text(signature).first.wait_for()
        anonymise_every_value(page, 20)
        left = [f"{t}.{c}" for t, c in erasure.text_columns(db)
                if db.execute(f"SELECT count(*) FROM [{t}] WHERE [{c}] LIKE ?", [f"%{signature}%"]).fetchone()[0]]
        assert left == []
        assert versions.version_by_id(db, version.id).content_hash != version.content_hash

        # (b) Sam votes once on `rated`, then tries the closed sibling's playground and results.
        session = sessions.start_session(db, rated, "Sam")
        sessions.record_rating(db, session, session.order[0][0], "A")
        page = sign_in("Sam")
        nav(page, "Playground")
        choose(page, "Run", f"Run {closed}")
        page.get_by_role("textbox", name="Prompt", exact=True).fill(prompts[0])
        click(page, "Answer with both models")
        page.get_by_text(f"You are rating run {rated}, which shares its base model with run {closed}").first.wait_for()
        assert db.execute("SELECT count(*) FROM playground_requests").fetchone()[0] == 0
        nav(page, "Results")
        choose(page, "Run", f"Run {closed}")
        page.get_by_text(f"You are rating run {rated}, which shares its base model and prompts with run {closed}"
                         ).first.wait_for()
        expect(page.get_by_test_id("stDownloadButton")).to_have_count(0)
        assert page.get_by_text(f"Base answer to {prompts[0]}").count() == 0
        assert page.get_by_test_id("stMetric").count() == 0
    db.conn.close()
    leaks = [str(p) for p in tmp_path.rglob("*") if p.is_file() and signature.encode() in p.read_bytes()]
    assert leaks == []
    assert guard.dialogs == [] and guard.outside == []


def blind_view(page) -> tuple[str, str]:
    """The Rate page's main area as a rater reads it, without the conversation and answer texts (code
    blocks: model output could contain any word), and the page's HTML."""
    body = page.locator("[data-testid='stMain']").first.inner_text()
    for text in page.locator("[data-testid='stMain'] [data-testid='stCode']").all_inner_texts():
        body = body.replace(text, "")
    return body.lower(), page.content().lower()


@pytest.mark.slow
def test_close_the_loop_rate_a_preference_round_then_its_blind_ab_and_report(rated_db, tmp_path, chromium):
    """Issue 28's "Done when", in the browser: rate → preference round → blind A/B of the round vs its
    parent → report. Not the journey, so set up through core (rated_db): the demo, frozen, with a real
    random adapter as the SFT parent (run 1) and its answers to the 20 held-out prompts. The round is a
    real DPO run in the background worker; its answers are generated for real (16 new tokens)."""
    import hashlib
    import json
    import zipfile

    from core.rating import sessions
    from core.training import rounds

    _T0[0] = time.time()
    db = store.connect(rated_db)
    parent = runs.list_runs(db)[0]
    parent_pairs = answer_pairs.pairs(db, parent.id)
    # Decided votes on answers the generation's PII scan flagged never become preference pairs.
    clean = {p.position for p in parent_pairs if not p.identical and "pii" not in p.flags}
    flagged = sum(not p.identical and "pii" in p.flags for p in parent_pairs)
    assert len(clean) >= rounds.MINIMUM_PAIRS + 2, (len(clean), flagged)
    guard = Guard()

    def sam_votes(run_id: int) -> list:
        return [r for r in sessions.ratings_for_run(db, run_id) if r.rater == "Sam"]

    with running_studio(rated_db) as url:
        def person(name: str):
            page = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            guard.attach(page)
            go(page, url, "results" if name == "Dana" else "rate")
            choose(page, "You are", name)
            return page

        mark("loop 1")
        # 1. Sam rates the parent blind, one pair after another, until four prompts with clean answers
        #    are decided (a round needs four pairs); the rest stays unrated.
        sam = person("Sam")
        while len({r.position for r in sam_votes(parent.id)} & clean) < rounds.MINIMUM_PAIRS:
            assert not next_pair_or_done(sam)
            body, html = blind_view(sam)
            assert "answer a" in body and "answer b" in body
            assert "tuned" not in body and "base model" not in body and "left_side" not in html
            vote(sam, "A is better")
        voted = sam_votes(parent.id)
        decided = {r.position for r in voted} & clean

        mark("loop 2")
        # 2. Dana, who owns the evaluation, closes the rating and reads the preference set: four pairs, and
        #    what was left out, counted from the pairs and votes themselves.
        dana = person("Dana")
        click(dana, "Close rating")
        dana.get_by_text("Rating of this run is closed: votes are final.").wait_for()
        settle(dana)  # "Close rating" reruns the page: wait for that run to end, or a click may hit a stale button
        assert sessions.rating_closed(db, parent.id)
        votes_hash = hashlib.sha256(json.dumps(sorted([r.position, r.rater, r.preferred] for r in voted)).encode()
                                    ).hexdigest()
        left_out = ", ".join(f"{n} {reason}" for reason, n in (("unrated", len(clean) - len(decided)),
                                                                ("pii flagged", flagged)) if n)
        dana.get_by_text(f"{len(decided)} preference pairs (0 with a correction as the chosen answer); prompts left "
                         f"out: {left_out}. Votes sha256 {votes_hash[:12]}.").wait_for()

        mark("loop 3")
        # 3. Dana trains a preference round; it is queued with the votes' pairs, frozen, and their hash.
        click(dana, "Train a preference round")
        dana.get_by_text(re.compile(r"Preference round queued as run \d+\.")).wait_for()
        [made] = rounds.rounds_from(db, parent.id)
        assert (made.kind, made.parent_run_id, made.rating_run_id, made.reference_run_id, made.votes_sha256) == (
            "dpo", parent.id, parent.id, parent.id, votes_hash)
        texts = {p.position: {"base": p.base_text, "tuned": p.tuned_text} for p in parent_pairs}
        preferred = {r.position: r.preferred for r in voted}
        assert sorted((p.position, p.chosen, p.rejected) for p in rounds.pairs_of(db, made.id)) == sorted(
            (pos, texts[pos][preferred[pos]], texts[pos]["base" if preferred[pos] == "tuned" else "tuned"])
            for pos in decided)

        # 4. The live panel on Train follows the real DPO run in the background worker to its end;
        #    the finished card names the votes and the adapter it learnt from.
        nav(dana, "Train")
        assert f"run={made.id}" in dana.url  # the live run opens first
        assert dana.get_by_role("tab", name="Runs", selected=True).is_visible()
        dana.get_by_test_id("stMetricValue").filter(has_text=re.compile("running|succeeded")).first.wait_for(
            timeout=120_000)
        dana.get_by_test_id("stMetricValue").filter(has_text="succeeded").first.wait_for(timeout=600_000)
        mark("loop 4: round trained")
        # The page stays on the run as it ends (it used to jump to "New run" the moment the run finished).
        assert dana.get_by_role("tab", name="Runs", selected=True).is_visible()
        made = runs.get_run(db, made.id)
        assert made.status == "succeeded", made.error
        steps = made.metrics["steps"]
        assert made.metrics["preference_pairs"] == len(decided) and steps == 3  # 4 pairs of 2 x 2: 3 epochs of 1
        dana.get_by_test_id("stMetricValue").filter(has_text=f"{steps}/{steps}").first.wait_for()
        dana.get_by_text(f"A preference round: it continues run {parent.id}'s adapter on {len(decided)} preference "
                         f"pairs from the blind votes of run {parent.id} (votes sha256 {votes_hash[:12]})").wait_for()
        dana.get_by_text(f"steps over {len(decided)} preference pairs").wait_for()
        card = (Path(made.adapter_path) / "README.md").read_text()
        assert f"Rating run: {parent.id}" in card and votes_hash in card
        assert f"Parent adapter: run {parent.id}, sha256 `{parent.adapter_sha256}`" in card

        mark("loop 5")
        # 5. Results offers the blind A/B of the round against its parent.
        nav(dana, "Results")
        choose(dana, "Run", f"Run {parent.id}")
        dana.get_by_text(f"Run {made.id}: preference round from run {parent.id}, succeeded.").wait_for()
        ab = dana.get_by_role("button", name=f"Blind A/B: run {made.id} vs run {parent.id}")
        assert ab.is_visible() and ab.is_enabled()
        # Sam generates the A/B's answers on the Rate page, where the number of new tokens is a knob
        # (the Results button answers with the default 160, minutes on two cores).
        nav(sam, "Rate")  # Sam's page was drawn before the round existed
        choose(sam, "Run", f"Run {made.id}")
        sam.get_by_label("Max new tokens").fill("16")
        click(sam, "Generate answer pairs")
        deadline = time.time() + 600
        while (job := answer_pairs.latest_job(db, made.id)) is None or job.status in ("queued", "running"):
            assert time.time() < deadline, job
            sam.wait_for_timeout(2000)
        assert job.status == "succeeded", job.error
        mark("loop 5: answers generated")
        # Only the held-out prompts the round never learned from; the tuned side is the round, the
        # reference side its parent (both adapters on the same base).
        ab_pairs = answer_pairs.pairs(db, made.id)
        assert job.total == len(parent_pairs) - len(decided) == len(ab_pairs)
        assert not {p.position for p in ab_pairs} & decided
        rateable = [p for p in ab_pairs if not p.identical]
        assert len(rateable) >= 4, "the round answers like its parent everywhere"

        mark("loop 6")
        # 6. Sam rates the round blind against its parent (the team that rated the parent rates the round):
        #    nothing on the page says which answer is the round's. Sam's page learns that the job ended
        #    from its polling fragment (backing off to 16 s) and then a rerun: give the first pair time.
        sam.get_by_role("button", name=re.compile("A is better")).first.wait_for(timeout=120_000)
        for _ in range(4):
            assert not next_pair_or_done(sam)
            body, html = blind_view(sam)
            assert "answer a" in body and "answer b" in body
            for word in ("preference round", "parent", "tuned", "base model", "reference", "dpo"):
                assert word not in body, f"{word!r} on the blind page"
            assert "left_side" not in html and "reference_run" not in html
            vote(sam, "A is better")
        round_votes = sam_votes(made.id)
        assert len(round_votes) == 4 and not sessions.rating_closed(db, made.id)
        wins = sum(r.preferred == "tuned" for r in round_votes)
        compared = len(round_votes) + len(ab_pairs) - len(rateable)  # identical pairs count as ties

        mark("loop 7")
        # 7. Dana closes the round's rating; Results and the HTML report name both runs and give the verdict.
        choose(dana, "Run", f"Run {made.id}")
        click(dana, "Close rating")
        dana.get_by_text("Rating of this run is closed: votes are final.").wait_for()
        settle(dana)
        round_name, parent_name = f"run {made.id} (the preference round)", f"run {parent.id} (its parent)"
        dana.get_by_text(re.compile(
            rf"Of {compared} prompts, {re.escape(round_name)} was better on {wins}, {re.escape(parent_name)} on {4 - wins},"
        )).first.wait_for()
        dana.get_by_text("Whether the preference round helped is not settled yet.").first.wait_for()
        dana.get_by_text(f"Compared blind: run {made.id} (challenger) against run {parent.id} (reference).").wait_for()
        with dana.expect_download() as download:
            dana.get_by_role("button", name="Download HTML").click()
        report = tmp_path / "round-report.html"
        download.value.save_as(report)
        html = report.read_text()
        assert (f"{round_name}&#x27;s answer was preferred on {wins} of the {compared} held-out requests and "
                f"{parent_name}&#x27;s on {4 - wins}") in html.lower()
        assert "Rated blind by 1 rater (Sam)" in html
        assert f"from run {parent.id}&#x27;s adapter, on the blind votes of run {parent.id}" in html
        assert "Whether the preference round helped is not settled yet." in html
        # The round's adapter as downloaded carries its lineage on its model card.
        settle(dana)  # a download reruns the page
        with dana.expect_download() as download:
            dana.get_by_role("button", name="Download the adapter (zip with its model card)").click()
        archive = tmp_path / "round-adapter.zip"
        download.value.save_as(archive)
        with zipfile.ZipFile(archive) as z:
            downloaded_card = z.read(f"run-{made.id}-adapter/README.md").decode()
        assert f"Rating run: {parent.id}" in downloaded_card and votes_hash in downloaded_card
        mark("loop done")
    assert guard.dialogs == [] and guard.outside == []
