"""Authoring data: datasets, examples, import and validation, duplicates, dataset statistics, the demo."""
