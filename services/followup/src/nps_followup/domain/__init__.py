"""Followup's rules: which responses open a case, when it is due, which actions it plans."""
