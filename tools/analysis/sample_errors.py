"""Reads the output of `evaluate --sample-errors` (JSON lines, optionally gzipped): one dict per image."""
import gzip, json


def read(path):
    """Yields one parsed record per line of PATH (.jsonl or .jsonl.gz)."""
    with (gzip.open(path, 'rt') if path.endswith('.gz') else open(path)) as f:
        for line in f:
            yield json.loads(line)
