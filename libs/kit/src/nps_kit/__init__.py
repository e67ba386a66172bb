"""npsloop plumbing with no business rules: settings, logging, clock, database, messaging, HTTP."""
