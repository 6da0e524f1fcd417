"""The event API: a Quart service that implements the operations runbook's contract (`service.app.create_app`)."""
