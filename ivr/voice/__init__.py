"""Twilio voice webhooks: parsing, signature checks, the call service and its HTTP face."""
