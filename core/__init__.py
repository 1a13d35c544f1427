"""Tuning Studio core: storage, datasets, PII, training, generation, rating and reports (no UI)."""

import os

# Nothing in the studio may reach a model hub at run time; set before transformers is imported
# anywhere (the app, the CLI and the trainer process all import this package first).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Presidio -> tldextract must use its bundled public-suffix snapshot, never download one.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

__version__ = "0.2.0"
