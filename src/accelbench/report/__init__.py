"""Reports: pure functions of a run directory's results.jsonl."""
