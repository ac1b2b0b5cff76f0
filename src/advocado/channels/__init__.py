"""Message channels: email over SMTP (channels/email.py) and a signed generic webhook for SMS,
WeCom and WeChat gateways (channels/webhook.py); the templates they send (channels/render.py).

Every channel answers a send with an Outcome whose `kind` says what the sender may assume:
- "sent": the receiver accepted it;
- "retry": it was certainly not accepted (refused before the content went, or a temporary
  4xx refusal): safe to send again later;
- "bounced": permanently refused (SMTP 5xx, gateway 4xx): do not send again;
- "uncertain": the connection broke after the content went and before the answer came: it
  may have been delivered, so it is not resent automatically (an operator decides).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OutcomeKind = Literal["sent", "retry", "bounced", "uncertain"]


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    detail: str = ""
    provider_id: str | None = None


@dataclass(frozen=True)
class Outgoing:
    """One rendered message, ready for a channel."""

    message_id: int
    cause_key: str
    channel: str
    to: str
    to_name: str | None
    locale: str
    subject: str
    text: str
    html: str | None
    unsubscribe_url: str | None
    template: str
    customer_external_id: str
    attempt: int
