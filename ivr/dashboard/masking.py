"""Phone numbers as viewers see them: enough to tell calls apart, not enough to call back."""

from __future__ import annotations

import re

MASK = "•"
PHONE = re.compile(r"^(\+?)(\d{5,15})$")
SIP = re.compile(r"^(sips?:)([^@]+)(@.+)$")


def mask_number(address: str) -> str:
    """`+84901234567` as `+84•••••4567`: the country code and last four digits kept.

    Numbers of six digits or fewer keep only their last two; a SIP URI hides its user part;
    anything else (`anonymous`, a client name) is not a number and is shown as it is.
    """
    text = address.strip()
    phone = PHONE.match(text)
    if phone:
        plus, digits = phone.groups()
        head, tail = (2, 4) if len(digits) > 6 else (0, 2)
        return plus + digits[:head] + MASK * (len(digits) - head - tail) + digits[-tail:]
    sip = SIP.match(text)
    if sip:
        return sip.group(1) + MASK * 3 + sip.group(3)
    return text
