"""npsloop scoring: segments responses, tracks NPS and publishes `ResponseScored` events."""
