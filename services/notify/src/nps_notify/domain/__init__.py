"""Notify's rules: when an action may be sent, and what the crash window means."""
