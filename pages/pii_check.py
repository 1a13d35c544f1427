"""PII check: scan examples with Presidio, review findings, anonymise or dismiss, configure detection."""

import pandas as pd
import streamlit as st

from core.curation import examples
from core.pii import review, values
from core.pii import scan as pii
from core.platform import permissions
from pages import common

common.through_app()

st.title("PII check")
db = common.db()
dataset = common.require_dataset()
config = pii.current_config(db)

status_slot = st.container()  # filled after a scan, so the numbers are current
if st.button("Scan now", type="primary"):
    bar = st.progress(0.0, text="Scanning…")
    summary = values.scan(db, dataset.id, lambda done, total: bar.progress(done / max(total, 1),
                                                                                text=f"Scanned {done}/{total}"),
                               actor=common.user())
    bar.empty()
    common.success(f"Scanned {summary['scanned']} changed example(s), skipped {summary['skipped_unchanged']} "
               f"unchanged; {summary['findings']} finding(s)"
               + (f"; anonymised {summary['anonymised_by_decision']} example(s) by earlier decisions."
                  if summary["anonymised_by_decision"] else "."))

gate = review.gate_status(db, dataset.id)
with status_slot:
    c = st.columns(4)
    c[0].metric("Unscanned examples", gate.unscanned_examples)
    c[1].metric("Open findings", gate.open_findings)
    c[2].metric("Vocabulary suggestions", gate.vocabulary_suggestions,
                help="Open findings whose whole value is a term of this dataset's glossary or guidelines "
                     "(products, teams, places). They stay open until an admin confirms the vocabulary: the "
                     "glossary is text any author can edit. Confirmed ones are listed as 'dismissed', with the term.")
    c[3].metric("Gate", "clear" if gate.clear else "blocked")

STATUS_LABELS = {"open": "open", "not_pii": "not personal data (value decision)",
                 "dismissed": "dismissed (one occurrence, or by the confirmed vocabulary)", "anonymised": "anonymised", "": "any"}
tab_values, tab_review, tab_decisions, tab_config = st.tabs(
    ["Review by value", "Review by occurrence", "Decisions", "Detection settings"])
can_dismiss = common.allowed("pii_dismiss")
with tab_values:
    common.caption("One decision per distinct value covers every occurrence in this dataset, now and in later "
                   "imports. Values that match the dataset's glossary or guidelines are suggested as not "
                   "personal data; an admin confirms them.")
    suggested = values.vocabulary_suggestions(db, dataset.id) if gate.vocabulary_suggestions else []
    if suggested and st.button(f"Confirm the dataset vocabulary ({len(suggested)} suggested value(s))",
                               key="pii.vocab_confirm", disabled=not can_dismiss,
                               help="Confirms the glossary and guidelines as they are now: they clear the values "
                                    "they name, each one recorded as your decision." if can_dismiss else
                                    "Clearing the gate needs the admin role."):
        values.confirm_vocabulary(db, dataset.id, actor=common.user())
        st.rerun()
    f = st.columns(2)
    value_status = f[0].selectbox("Status", ["open", "not_pii", "dismissed", "anonymised", ""],
                                  format_func=STATUS_LABELS.get, key="pii.value_status")
    value_entity = f[1].selectbox("Entity type", [""] + config.active_entities, format_func=lambda v: v or "any",
                                  key="pii.value_entity")
    groups = values.value_groups(db, dataset.id, status=value_status, entity_type=value_entity)
    st.write(f"{len(groups)} distinct value(s), {sum(g.occurrences for g in groups)} occurrence(s).")
    for group in groups[:60]:
        with st.container(border=True):
            common.caption(f"{' / '.join(group.entity_types)} · {group.occurrences} occurrence(s) in "
                           f"{group.example_count} example(s) · {STATUS_LABELS[group.status]}"
                           + (f" — {group.reason}" if group.reason else ""))
            if group.value:
                common.show_text(group.context)
            if group.status != "open":
                continue
            key = group.value_hash
            row = st.columns([0.25, 0.3, 0.45])  # wide enough for "Anonymise in 12 example(s)" uncut
            method = row[0].selectbox("Anonymise as", values.ANONYMISE_METHODS, key=f"pii.vm.{key}")
            if row[1].button(f"Anonymise in {group.example_count} example(s)", key=f"pii.va.{key}"):
                changed = values.anonymise_everywhere(db, dataset.id, key, method=method, actor=common.user())
                common.success(f"Anonymised {changed} example(s); later imports of this value will be too.")
                st.rerun()
            reason = row[2].text_input("Not personal data in this dataset, because", key=f"pii.vr.{key}",
                                       disabled=not can_dismiss,
                                       help=None if can_dismiss else "Clearing the gate needs the admin role.")
            if reason and row[2].button("Not personal data", key=f"pii.vd.{key}"):
                values.mark_not_pii(db, dataset.id, key, reason, actor=common.user())
                st.rerun()

with tab_decisions:
    made = values.decisions(db, dataset.id)
    if not made:
        st.caption("No decision by value yet.")
    for decision in made:
        with st.container(border=True):
            label = ("not personal data: " + decision.value_text if decision.decision == "not_pii"
                     else f"anonymised everywhere ({decision.method}); the raw value was erased")
            common.caption(f"{' / '.join(decision.entity_types)} · {decision.decided_by} · {decision.decided_at[:16]}")
            common.show_text(label + (f" — because: {decision.reason}" if decision.reason else ""))
            if st.button("Undo", key=f"pii.undo.{decision.value_hash}",
                         help="Not-personal-data: its occurrences are open for review again. Anonymised: later "
                              "imports are no longer anonymised; text already anonymised stays so."):
                try:
                    values.undo(db, dataset.id, decision.value_hash, actor=common.user())
                    st.rerun()
                except permissions.PermissionDenied as exc:
                    common.error(str(exc))

with tab_review:
    f = st.columns(2)
    entity = f[0].selectbox("Entity type", [""] + config.active_entities, format_func=lambda v: v or "any")
    status = f[1].selectbox("Status", ["open", "not_pii", "dismissed", "anonymised", ""],
                            format_func=STATUS_LABELS.get)
    findings = review.open_findings(db, dataset.id, entity_type=entity, status=status)
    st.write(f"{len(findings)} finding(s).")
    if not can_dismiss:
        st.caption("Deciding that a finding is not personal data clears the gate, so it needs the admin role. "
                   "Anonymising is open to authors.")
    if findings and status == "open":
        with st.form("pii.bulk"):
            st.write(f"Bulk action on the {len(findings)} finding(s) listed, in "
                     f"{len({x.example_id for x in findings})} example(s)")
            method = st.selectbox("Anonymise as", ["replace", "mask", "redact"],
                                  help="replace: <PERSON_1> placeholders, consistent within an example")
            reason = st.text_input("…or dismiss all, because", disabled=not can_dismiss)
            a, b = st.columns(2)
            if a.form_submit_button("Anonymise all listed"):
                changed = review.anonymise(db, [x.id for x in findings], method=method, actor=common.user())
                common.success(f"Anonymised {changed} example(s) (new revisions).")
                st.rerun()
            if b.form_submit_button("Dismiss all listed", disabled=not can_dismiss):
                try:
                    review.dismiss(db, [x.id for x in findings], reason, actor=common.user())
                    st.rerun()
                except ValueError as exc:
                    common.error(str(exc))
    for finding in findings[:40]:
        example = examples.get_example(db, finding.example_id) if finding.example_id else None
        if example is None:
            continue
        text = example.messages[finding.message_index]["content"]
        with st.container(border=True):
            common.caption(f"Example {example.id} · message {finding.message_index + 1} "
                           f"({example.messages[finding.message_index]['role']}) · {finding.entity_type} · "
                           f"score {finding.score:.2f} · {STATUS_LABELS[finding.status]}"
                           + (f" ({finding.reason})" if finding.status != "open" and finding.reason else ""))
            if finding.status == "anonymised":
                # The raw value was erased; the example's current text shows what replaced it.
                common.show_text(text)
            else:
                # The span is marked with brackets inside plain text: no HTML is ever rendered.
                common.show_text(text[:finding.start] + "⟦" + text[finding.start:finding.end] + "⟧"
                                 + text[finding.end:])
            if finding.status == "open":
                row = st.columns([0.25, 0.25, 0.5])
                method = row[0].selectbox("Method", ["replace", "mask", "redact"], key=f"pii.m.{finding.id}",
                                          label_visibility="collapsed")
                if row[1].button("Anonymise", key=f"pii.a.{finding.id}"):
                    review.anonymise(db, [finding.id], method=method, actor=common.user())
                    st.rerun()
                reason = row[2].text_input("Not PII because", key=f"pii.r.{finding.id}", disabled=not can_dismiss)
                if reason and st.button("Dismiss", key=f"pii.d.{finding.id}"):
                    review.dismiss(db, [finding.id], reason, actor=common.user())
                    st.rerun()

with tab_config:
    with st.form("pii.config"):
        entities = st.multiselect("Entities", pii.ALL_ENTITIES, default=[e for e in config.entities if e in pii.ALL_ENTITIES])
        threshold = st.slider("Score threshold", 0.0, 1.0, config.threshold, 0.05)
        allow = st.text_area("Allow list (one per line: company and product names that are never PII)",
                             "\n".join(config.allow_list))
        deny = st.text_area("Deny lists (ENTITY: word, word — one entity per line)",
                            "\n".join(f"{k}: {', '.join(v)}" for k, v in config.deny_lists.items()))
        rules = st.text_area("House identifiers (ENTITY | regex | score — one per line)",
                             "\n".join(f"{r.entity} | {r.pattern} | {r.score}" for r in config.regex_rules),
                             help=r"e.g. EMPLOYEE_ID | \bEMP-\d{5}\b | 0.9")
        if st.form_submit_button("Save settings (new version)"):
            try:
                new = pii.config_from_text(entities, threshold, allow, deny, rules)
                pii.save_config(db, new, actor=common.user())
                common.success("Saved. Examples will be rescanned with the new settings.")
            except (ValueError, permissions.PermissionDenied) as exc:
                common.error(f"Not saved: {exc}")
    sample = st.text_area("Test box: type text to see what the current settings detect")
    if sample:
        hits = pii.analyze_text(sample, config)
        st.dataframe(pd.DataFrame([{"entity": h.entity_type, "text": sample[h.start:h.end], "score": h.score}
                                   for h in hits]), hide_index=True)
