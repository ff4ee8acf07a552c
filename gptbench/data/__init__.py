"""Batch sources for the train step: synthetic tokens, a text file, llm.c-format token shards."""
