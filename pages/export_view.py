"""Results → Take your model: the run's dataset version as a Hugging Face folder and the merged model (issue 27)."""

import sqlite_utils
import streamlit as st

from core.curation import datasets
from core.models import registry
from core.platform import permissions
from core.reports import merged_model
from core.training import runs, versions
from pages import common


def take_out(db: sqlite_utils.Database, run_id: int) -> None:
    """Downloads and exports beside the adapter zip; core checks the role and the approval again."""
    if not common.allowed("export_dataset"):
        return
    run = runs.get_run(db, run_id)
    version = versions.version_by_id(db, run.dataset_version_id)
    st.download_button(f"Download dataset version {version.number} as a Hugging Face folder (zip: parquet + card)",
                       lambda: versions.export_hf_zip(common.db(), version.id, actor=common.user()),
                       file_name=f"dataset-v{version.number}-hf.zip", mime="application/zip",
                       key="results.dl.hf_dataset")
    st.markdown("**Merged model** — the adapter merged into the full-precision base, saved as safetensors with "
                "the tokenizer, chat template, generation config and a model card, for serving tools.")
    confirm = False
    if run.approval != "approved":
        common.caption(f"Run {run_id} is {run.approval or 'not signed off'}: merged weights are for deployment.")
        confirm = st.checkbox("I confirm exporting a merged model of this unapproved run (recorded on its card)",
                              key=f"results.merge.confirm.{run_id}")
    done_key = f"results.merge.done.{run_id}"
    if st.button("Merge and save the model", key=f"results.merge.{run_id}"):
        try:
            with st.spinner("Merging the adapter into the base model…"):
                st.session_state[done_key] = str(merged_model.export_merged_model(
                    db, run_id, actor=common.user(), confirm_unapproved=confirm))
        except (ValueError, datasets.DatasetError, registry.ModelUnavailable, permissions.PermissionDenied) as exc:
            common.error(str(exc))
    if st.session_state.get(done_key):
        common.success("Merged model saved in this folder on the studio's machine:")
        common.show_text(st.session_state[done_key], key=f"results.merge.path.{run_id}")
