"""Concept reference sets (data): one JSONL of {"text": ...} rows per tag; see README.md."""
