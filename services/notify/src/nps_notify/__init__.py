"""npsloop notify: dispatches email, SMS and ticket actions and reports their outcomes."""
