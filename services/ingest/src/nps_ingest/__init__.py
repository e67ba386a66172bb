"""npsloop ingest: receives survey responses and publishes `ResponseReceived` events."""
