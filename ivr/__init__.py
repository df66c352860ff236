"""A 24/7 phone-support router: YAML call flows served as Twilio TwiML."""

__version__ = "0.1.0"
