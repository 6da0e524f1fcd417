"""The event resource: ingest and query operational events."""
