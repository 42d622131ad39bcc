"""The gateway: the public API, orchestration of the backends, the decision and the catalogue."""
