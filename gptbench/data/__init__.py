"""Data: batch sources for the train step (synthetic tokens, a text file, llm.c-format token shards), the shard
format, and `gptbench prepare` (tokenizing parquet, jsonl or text into shards)."""
