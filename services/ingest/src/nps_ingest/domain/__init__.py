"""Ingest's rules: who may post, and how a canonical response becomes a `ResponseReceived`."""
