"""Records: what every layer reads and writes. Never imports torch.

    schema.py   the report's dataclasses <-> JSON, schema-versioned
    store.py    reports on disk: names, atomic writes that never overwrite, finding and loading
    text.py     numbers and configurations as text (rates, sizes, hours, a run's config in one line)
"""
