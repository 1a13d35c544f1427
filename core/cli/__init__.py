"""The command line: `python -m core ...` drives the same core functions as the pages."""
