"""The conformance suite: every runbook requirement as a check that runs."""
