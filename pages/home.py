"""Home: where the current dataset stands in the loop, and what to do next."""

import streamlit as st

from core.reports import overview
from pages import common

common.through_app()

st.title("Tuning Studio")
st.write("Teach a language model your house style: write examples, check them for personal data, "
         "train in the background, then rate base-versus-tuned answers blind.")
dataset = common.require_dataset()
common.heading(dataset.name)
if dataset.description:
    st.text(dataset.description)

steps = overview.loop_steps(common.db(), dataset)
next_step = next((s for s in steps if not s.done), None)
if next_step:
    st.info(f"Next: **{common.md_escape(next_step.name)}** — {common.md_escape(next_step.why)}")
else:
    common.success("Every step is done. Train again with more examples, or approve an adapter on Results.")
for number, step in enumerate(steps, start=1):
    cols = st.columns([0.06, 0.3, 0.64])
    cols[0].markdown(":material/check_circle:" if step.done else
                     (":material/arrow_forward:" if step is next_step else ":material/radio_button_unchecked:"))
    cols[1].write(f"**{number}. {step.name}**")
    cols[2].write(f"{step.detail}  \n{step.why}")
