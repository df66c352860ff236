"""The JSON API under /api/: call records and KPIs (agents live in ivr.agents)."""
