"""Reports: the schema (dataclasses <-> JSON), the atomic store, loading, rendering. Never imports torch."""
