"""Author: import, edit and curate chat examples; splits, duplicates, statistics, versions, export."""

import pandas as pd
import streamlit as st

from core.curation import datasets, examples, importing, validation
from core.curation import stats_dataset as dstats
from core.models import registry, templating
from core.platform import permissions
from core.platform.paths import safe_name
from core.training import versions
from pages import common, convention_view

common.through_app()

PAGE_SIZE = 25
EDIT_KEY = "author.editing_id"
PAGE_KEY = "author.page"
TURNS_PREFIX = "author.turns"
TAB_KEY = "author.tab"
DRAFT_PREFIX = "author.draft_no"  # bumped for every new example, so its widgets start empty

@st.cache_data(ttl=600, show_spinner="Checking duplicates and the PII gate…", max_entries=16)
def freeze_check(dataset_id: int, signature: tuple) -> versions.FreezeCheck:
    """Near-duplicate and leakage checks are O(examples); recompute only when the data changes."""
    del signature  # part of the cache key only
    return versions.freeze_check(common.db(), dataset_id)


st.title("Author")
db = common.db()

with st.expander("New dataset", expanded=not datasets.list_datasets(db)):
    with st.form("author.new_dataset", clear_on_submit=True):
        name = st.text_input("Name")
        description = st.text_area("What should the model learn?")
        if st.form_submit_button("Create dataset"):
            try:
                created = datasets.create_dataset(db, name, description=description, actor=common.user())
                st.session_state[common.DATASET_KEY] = created.id
                st.session_state["author.created"] = created.name
                st.rerun()
            except datasets.DatasetError as exc:
                common.error(str(exc))
    if st.session_state.get("author.created"):
        common.success(f"Created dataset {st.session_state.pop('author.created')}; it is now selected.")

dataset = common.require_dataset()
TURNS_KEY = f"{TURNS_PREFIX}.{dataset.id}"  # the editor's draft belongs to one dataset
st.caption(f"Dataset: {common.md_escape(dataset.name)}")
if not common.allowed("edit_examples"):
    st.info("You can read this dataset; changing it needs the author or admin role.")
DRAFT_KEY = f"{DRAFT_PREFIX}.{dataset.id}"


def open_in_editor(example_id: int | None) -> None:
    """Callback (runs before the page): the editor shows this example, or a fresh empty one."""
    if example_id is None:
        st.session_state.pop(EDIT_KEY, None)
        st.session_state[DRAFT_KEY] = st.session_state.get(DRAFT_KEY, 0) + 1
    else:
        st.session_state[EDIT_KEY] = example_id
    st.session_state.pop(TURNS_KEY, None)
    st.session_state[TAB_KEY] = "Editor"


tab_examples, tab_editor, tab_import, tab_quarantine, tab_stats, tab_versions, tab_settings = st.tabs(
    ["Examples", "Editor", "Import", "Quarantine", "Statistics & duplicates", "Versions & export", "Dataset settings"],
    key=TAB_KEY, on_change="rerun")

# ----------------------------------------------------------------------------- examples
with tab_examples:
    cols = st.columns(6)
    flt = examples.ExampleFilter(
        text=cols[0].text_input("Search text"), tag=cols[1].text_input("Tag"),
        status=cols[2].selectbox("Status", ["", "draft", "ready"], format_func=lambda v: v or "any"),
        split=cols[3].selectbox("Split", ["", "train", "heldout"], format_func=lambda v: v or "any"),
        has_pii=cols[4].checkbox("Has open PII"), has_problem=cols[5].checkbox("Has problem"))
    page = st.session_state.setdefault(PAGE_KEY, 0)
    rows, total = examples.list_examples(db, dataset.id, flt, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    nav = st.columns([1, 1, 4])
    if nav[0].button("◀ Previous", disabled=page == 0):
        st.session_state[PAGE_KEY] = page - 1
        st.rerun()
    if nav[1].button("Next ▶", disabled=page >= pages - 1):
        st.session_state[PAGE_KEY] = page + 1
        st.rerun()
    nav[2].write(f"{total} matching · page {page + 1} of {pages}")
    table = pd.DataFrame([{
        "id": e.id, "prompt": e.first_user_text[:120], "split": e.split, "status": e.status,
        "tags": ", ".join(e.tags), "author": e.author, "problems": ", ".join(e.problem_codes),
        "revision": e.revision, "delete": False} for e in rows])
    if not table.empty:
        edited = st.data_editor(
            table, key=f"author.table.{page}", hide_index=True, width="stretch",
            disabled=["id", "prompt", "author", "problems", "revision"],
            column_config={"split": st.column_config.SelectboxColumn(options=["train", "heldout"]),
                           "status": st.column_config.SelectboxColumn(options=["draft", "ready"])})
        buttons = st.columns(3)
        if buttons[0].button("Save table edits"):
            try:
                changed, deleted = examples.apply_table_edits(db, table.to_dict("records"), edited.to_dict("records"),
                                                              author=common.user())
                common.success(f"Saved {changed} change(s), deleted {deleted}.")
                st.rerun()
            except datasets.DatasetError as exc:
                common.error(str(exc))
        chosen = buttons[1].selectbox("Open in editor", [None] + [e.id for e in rows],
                                      format_func=lambda i: "—" if i is None else f"Example {i}")
        buttons[2].button("Edit", key="author.open", disabled=chosen is None, on_click=open_in_editor, args=(chosen,),
                          help="Opens the example in the Editor tab")

# ----------------------------------------------------------------------------- editor
with tab_editor:
    editing = st.session_state.get(EDIT_KEY)
    current = examples.get_example(db, editing) if editing else None
    slot = editing or f"new{st.session_state.get(DRAFT_KEY, 0)}"  # widget keys: one set per example
    if TURNS_KEY not in st.session_state:
        st.session_state[TURNS_KEY] = [dict(m) for m in current.messages] if current else (
            ([{"role": "system", "content": dataset.system_prompt}] if dataset.system_prompt else [])
            + [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}])
    turns = st.session_state[TURNS_KEY]
    left, right = st.columns([0.62, 0.38])
    with left:
        st.subheader(f"Editing example {editing}" if editing else "New example")
        for i, turn in enumerate(turns):
            c = st.columns([0.2, 0.7, 0.1])
            turn["role"] = c[0].selectbox("Role", list(validation.ROLES), key=f"author.role.{dataset.id}.{slot}.{i}",
                                          index=list(validation.ROLES).index(turn["role"]) if turn["role"] in validation.ROLES else 1)
            turn["content"] = c[1].text_area("Content", turn["content"], key=f"author.content.{dataset.id}.{slot}.{i}", height=110)
            if c[2].button("✕", key=f"author.remove.{dataset.id}.{slot}.{i}", help="Remove this turn"):
                turns.pop(i)
                st.rerun()
        add = st.columns(3)
        if add[2].button("+ System turn", disabled=any(t["role"] == "system" for t in turns)):
            turns.insert(0, {"role": "system", "content": dataset.system_prompt})
            st.rerun()
        if add[0].button("+ User turn"):
            turns.append({"role": "user", "content": ""})
            st.rerun()
        if add[1].button("+ Assistant turn"):
            turns.append({"role": "assistant", "content": ""})
            st.rerun()
        problems = validation.check_messages(turns, 1)
        for p in problems:
            common.warning(p.message.removeprefix("line 1: "))
        meta = st.columns(3)
        split = meta[0].selectbox("Split", ["train", "heldout"], index=0 if not current or current.split == "train" else 1)
        status = meta[1].selectbox("Status", ["draft", "ready"], index=1 if current and current.status == "ready" else 0)
        tags = meta[2].text_input("Tags (comma separated)", ", ".join(current.tags) if current else "")
        actions = st.columns(4)
        if actions[0].button("Save", type="primary"):
            try:
                saved = examples.save_example(db, dataset, turns, example_id=editing, author=common.user(),
                                              split=split, status=status, tags=[t.strip() for t in tags.split(",") if t.strip()])
                st.session_state[EDIT_KEY] = saved.id
                common.success(f"Saved example {saved.id} (revision {saved.revision}).")
            except datasets.DatasetError as exc:
                common.error(str(exc))
        if editing and actions[1].button("Duplicate"):
            copy = examples.duplicate_example(db, dataset, editing, author=common.user())
            st.session_state[EDIT_KEY] = copy.id
            st.session_state.pop(TURNS_KEY, None)
            st.rerun()
        if editing and actions[2].button("Delete"):
            examples.delete_examples(db, [editing], author=common.user())
            st.session_state.pop(EDIT_KEY, None)
            st.session_state.pop(TURNS_KEY, None)
            st.rerun()
        actions[3].button("New example", on_click=open_in_editor, args=(None,),
                          help="An empty example, with the dataset's system prompt when it has one")
    with right:
        st.subheader("Guidelines")
        common.show_text(dataset.guidelines or "No guidelines yet (Dataset settings tab).")
        st.subheader("What the model trains on")
        if not problems:
            try:
                tokenizer = templating.load_tokenizer(registry.DEFAULT_MODEL)
                templated = templating.template_example(tokenizer, turns)
                marked = "".join(("⟦" + templated.text[s:e] + "⟧") if trained else templated.text[s:e]
                                 for s, e, trained in templated.spans)
                st.caption(f"{templated.token_count} tokens, {sum(templated.assistant_mask)} trained "
                           f"(inside ⟦ ⟧). Training cuts at {templating.DEFAULT_MAX_LENGTH}.")
                common.show_text(marked)
            except registry.ModelUnavailable as exc:
                common.warning(str(exc))

# ----------------------------------------------------------------------------- import
with tab_import:
    st.write("OpenAI chat JSONL (`{\"messages\": [...]}`) — Alpaca, ShareGPT and prompt/completion lines "
             "are detected and converted. Every line gets a verdict; bad lines go to Quarantine.")
    upload = st.file_uploader("JSONL file", type=["jsonl", "json", "txt"], key="author.upload")
    # One split choice per dataset (it used to carry over, sending a file into held-out unnoticed).
    into = st.selectbox("Import into split", ["train", "heldout"], key=f"author.import_split.{dataset.id}")
    report_key = f"author.import_report.{dataset.id}"  # the last report stays until the next import
    if upload is not None and st.button("Import", type="primary"):
        try:
            with st.spinner("Validating every line…"):
                report = importing.import_jsonl(db, dataset, upload.getvalue(), source=upload.name,
                                                author=common.user(), split=into,
                                                count_tokens=templating.token_counter(registry.DEFAULT_MODEL))
            st.session_state[report_key] = {"file": upload.name, "split": into, **report.to_dict(),
                                            "problems": [{**p.to_dict(), "severity": p.severity}
                                                         for p in report.errors + report.warnings]}
        except (datasets.DatasetError, registry.ModelUnavailable) as exc:
            common.error(str(exc))
    last = st.session_state.get(report_key)
    if last:
        common.success(f"{last['file']} into {last['split']}: imported {last['imported']}; "
                       f"{last['quarantined']} quarantined; {last['duplicates']} duplicates skipped; "
                       f"{last['blank']} blank lines. Formats: "
                       f"{', '.join(f'{k} ({v})' for k, v in last['formats'].items()) or 'none'}.")
        if last["problems"]:
            st.dataframe(pd.DataFrame(sorted(last["problems"], key=lambda p: p["line"])), hide_index=True)

# ----------------------------------------------------------------------------- quarantine
with tab_quarantine:
    held = importing.list_quarantine(db, dataset.id)
    if not held:
        st.write("Nothing in quarantine.")
    for row in held[:50]:
        with st.container(border=True):
            common.caption(f"{row['source']} line {row['line_no']} · {row['code']}")
            st.text(row["message"])
            turns_key = f"author.qturns.{row['id']}"
            if turns_key not in st.session_state:
                st.session_state[turns_key] = importing.quarantined_turns(row["raw_text"])
            turns = st.session_state[turns_key]
            as_json = turns is None or st.toggle("Edit the raw line", key=f"author.qraw.{row['id']}")
            if as_json:
                fixed = st.text_area("Fix the line", row["raw_text"], key=f"author.q.{row['id']}", height=100)
            else:
                assert turns is not None
                for i, turn in enumerate(turns):
                    t = st.columns([0.2, 0.8])
                    roles = list(validation.ROLES)
                    turn["role"] = t[0].selectbox("Role", roles, index=roles.index(turn["role"]) if turn["role"] in roles
                                                  else 1, key=f"author.qrole.{row['id']}.{i}")
                    turn["content"] = t[1].text_area("Content", turn["content"], key=f"author.qcontent.{row['id']}.{i}",
                                                     height=80)
                if st.button("+ Assistant answer", key=f"author.qadd.{row['id']}"):
                    turns.append({"role": "assistant", "content": ""})
                    st.rerun()
                fixed = importing.turns_line(turns)
            c = st.columns(2)
            if c[0].button("Re-validate and import", key=f"author.qfix.{row['id']}"):
                remaining = importing.fix_quarantined(db, row["id"], fixed, author=common.user())
                if remaining:
                    common.error("; ".join(p.message for p in remaining))
                else:
                    st.rerun()
            sure = c[1].checkbox("Discard this line for good", key=f"author.qsure.{row['id']}")
            if c[1].button("Discard", key=f"author.qdel.{row['id']}", disabled=not sure):
                importing.discard_quarantined(db, row["id"], author=common.user())
                st.rerun()

# ----------------------------------------------------------------------------- statistics
with tab_stats:
    if st.button("Compute statistics"):
        everything = examples.all_examples(db, dataset.id)
        stats = dstats.compute(everything, registry.DEFAULT_MODEL)
        st.info(stats.advice)
        st.plotly_chart(dstats.histograms(stats), width="stretch")
        st.dataframe(pd.DataFrame([{"examples": stats.examples, "missing system": stats.missing_system,
                                    "missing user": stats.missing_user, "over max length": stats.over_length}]),
                     hide_index=True)
    leaks = freeze_check(dataset.id, examples.content_signature(db, dataset.id)).leakage
    st.subheader("Held-out leakage")
    st.write("Held-out prompts that nearly duplicate training prompts block freezing." if leaks else "No leakage found.")
    if leaks:
        st.dataframe(pd.DataFrame([vars(p) for p in leaks]), hide_index=True)
    st.subheader("Near-duplicates in training")
    if st.button("Find near-duplicates"):
        near = examples.near_duplicates(db, dataset.id)
        st.write(f"{len(near)} pair(s)." if near else "None found.")
        if near:
            st.dataframe(pd.DataFrame([vars(p) for p in near]), hide_index=True)
    c = st.columns(3)
    fraction = c[0].slider("Held-out fraction", 0.05, 0.5, 0.2)
    seed = c[1].number_input("Seed", value=0, step=1)
    if c[2].button("Random split"):
        train_n, held_n = examples.random_split(db, dataset.id, fraction, int(seed), author=common.user())
        common.success(f"{train_n} train / {held_n} held-out.")

# ----------------------------------------------------------------------------- versions
with tab_versions:
    check = freeze_check(dataset.id, examples.content_signature(db, dataset.id))
    st.write(f"Ready to freeze: {check.train} train, {check.heldout} held-out.")
    if check.drafts:
        common.warning(f"{check.drafts} draft example(s) will be left out of this version: mark them ready "
                       "(Examples tab) to include them.")
    for reason in check.blockers + check.pii_blockers:
        common.warning(reason)
    override = ""
    if check.pii_blockers and common.allowed("pii_override"):
        override = st.text_input("Admin override of the PII gate: reason (audit-logged)")
    if st.button("Freeze a version", type="primary", disabled=bool(check.blockers)):
        try:
            version = versions.freeze(db, dataset, actor=common.user(), override_reason=override)
            common.success(f"Version {version.number} frozen (sha256 {version.content_hash[:12]}…).")
        except datasets.DatasetError as exc:
            common.error(str(exc))
    frozen = versions.list_versions(db, dataset.id)
    if frozen:
        st.dataframe(pd.DataFrame([vars(v) for v in frozen]), hide_index=True)
        c = st.columns(2)
        number = c[0].selectbox("Export version", [v.number for v in reversed(frozen)])
        split_choice = c[1].selectbox("Split", ["all", "train", "heldout"])
        try:
            text = versions.export_jsonl(db, dataset, version=number, actor=common.user(),
                                         split=None if split_choice == "all" else split_choice)
            st.download_button("Download JSONL", text, file_name=f"{safe_name(dataset.name)}-v{number}-{split_choice}.jsonl",
                               mime="application/jsonl")
        except (datasets.DatasetError, permissions.PermissionDenied) as exc:
            common.error(str(exc))

# ----------------------------------------------------------------------------- settings
with tab_settings:
    with st.form("author.settings"):
        description = st.text_area("Description", dataset.description)
        system_prompt = st.text_area("Reusable system prompt (pre-filled in new examples)", dataset.system_prompt)
        guidelines = st.text_area("Authoring guidelines", dataset.guidelines, height=160)
        convention = st.text_input("Output convention (regular expression the answers must match)",
                                   dataset.convention_regex)
        criteria = st.text_input("Rating criteria (comma separated)", ", ".join(dataset.criteria))
        glossary = st.text_input("Glossary terms (comma separated)", ", ".join(dataset.glossary))
        if st.form_submit_button("Save settings"):
            try:
                datasets.update_dataset(db, dataset.id, actor=common.user(), description=description,
                                        system_prompt=system_prompt, guidelines=guidelines,
                                        convention_regex=convention, criteria=criteria.split(","),
                                        glossary=glossary.split(","))
                common.success("Saved.")
            except datasets.DatasetError as exc:
                common.error(str(exc))
    convention_view.render(db, dataset)
