"""PII check: scan examples with Presidio, review findings, anonymise or dismiss, configure detection."""

import pandas as pd
import streamlit as st

from core import examples, permissions, pii, pii_review
from pages import common

common.through_app()

st.title("PII check")
db = common.db()
dataset = common.require_dataset()
config = pii.current_config(db)

status_slot = st.container()  # filled after a scan, so the numbers are current
if st.button("Scan now", type="primary"):
    bar = st.progress(0.0, text="Scanning…")
    summary = pii.scan_dataset(db, dataset.id, lambda done, total: bar.progress(done / max(total, 1),
                                                                                text=f"Scanned {done}/{total}"),
                               actor=common.user())
    bar.empty()
    common.success(f"Scanned {summary['scanned']} changed example(s), skipped {summary['skipped_unchanged']} "
               f"unchanged; {summary['findings']} finding(s).")

gate = pii_review.gate_status(db, dataset.id)
with status_slot:
    c = st.columns(3)
    c[0].metric("Unscanned examples", gate.unscanned_examples)
    c[1].metric("Open findings", gate.open_findings)
    c[2].metric("Gate", "clear" if gate.clear else "blocked")

tab_review, tab_config = st.tabs(["Review findings", "Detection settings"])
with tab_review:
    f = st.columns(2)
    entity = f[0].selectbox("Entity type", [""] + config.active_entities, format_func=lambda v: v or "any")
    status = f[1].selectbox("Status", ["open", "dismissed", "anonymised", ""], format_func=lambda v: v or "any")
    findings = pii_review.open_findings(db, dataset.id, entity_type=entity, status=status)
    st.write(f"{len(findings)} finding(s).")
    can_dismiss = common.allowed("pii_dismiss")
    if not can_dismiss:
        st.caption("Deciding that a finding is not personal data clears the gate, so it needs the admin role. "
                   "Anonymising is open to authors.")
    if findings and status == "open":
        with st.form("pii.bulk"):
            st.write("Bulk action on every finding listed above")
            method = st.selectbox("Anonymise as", ["replace", "mask", "redact"],
                                  help="replace: <PERSON_1> placeholders, consistent within an example")
            reason = st.text_input("…or dismiss all, because", disabled=not can_dismiss)
            a, b = st.columns(2)
            if a.form_submit_button("Anonymise all listed"):
                changed = pii_review.anonymise(db, [x.id for x in findings], method=method, actor=common.user())
                common.success(f"Anonymised {changed} example(s) (new revisions).")
                st.rerun()
            if b.form_submit_button("Dismiss all listed", disabled=not can_dismiss):
                try:
                    pii_review.dismiss(db, [x.id for x in findings], reason, actor=common.user())
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
                           f"score {finding.score:.2f} · {finding.status}"
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
                    pii_review.anonymise(db, [finding.id], method=method, actor=common.user())
                    st.rerun()
                reason = row[2].text_input("Not PII because", key=f"pii.r.{finding.id}", disabled=not can_dismiss)
                if reason and st.button("Dismiss", key=f"pii.d.{finding.id}"):
                    pii_review.dismiss(db, [finding.id], reason, actor=common.user())
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
