"""Referral and coupon codes: short, readable aloud, unguessable.

The alphabet leaves out 0/O, 1/I/L and U (look-alikes, and accidental words), so a code read
from a poster or said over the phone is typed right. 8 characters of 30 is ~6.6e11 codes,
drawn with `secrets`: guessing a live code by trying is hopeless at any request rate we serve.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 8
_VANITY = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,30}[A-Z0-9]$")


def new_code(prefix: str = "", length: int = LENGTH) -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(length))
    return f"{prefix}{body}"


def normalise(code: str) -> str:
    """How a code is stored and looked up: trimmed, upper case (codes are case-blind)."""
    return code.strip().upper()


def check_vanity(code: str) -> str:
    """A chosen code (e.g. ZHANGSAN-2026), normalised; ValueError saying what is wrong."""
    value = normalise(code)
    if not _VANITY.match(value):
        raise ValueError(
            f"vanity code {code!r}: 4-32 letters, digits or '-', starting and ending with a "
            f"letter or digit / 自定义推荐码需为4-32位字母、数字或“-”"
        )
    return value
