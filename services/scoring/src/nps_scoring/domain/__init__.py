"""Scoring's rules."""
