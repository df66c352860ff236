"""Agent presence: who is away, set from the CLI or the authenticated HTTP API."""
