"""npsloop followup: opens follow-up cases, plans actions and tracks them to closure."""
