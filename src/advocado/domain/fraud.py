"""Fraud checks before any reward. Each rule has a setting (off / review / reject, in the
program's `fraud:`), and each finding says which rule fired and on which values, in English
and Chinese. No I/O but reading the shipped disposable-domain list.

Hold for review is the default wherever an honest case exists (an office shares one IP, a
family shares a device); reject is kept for what is the same person beyond doubt.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from advocado.domain.programs import ProgramConfig

ALLOW, REVIEW, REJECT = "allow", "review", "reject"
COUPON_SITES = (
    "retailmenot.",
    "coupons.com",
    "slickdeals.",
    "honey.",
    "smzdm.com",
    "dealmoon.",
    "couponfollow.",
    "groupon.",
    "youhui",
    "quan",
)


@cache
def disposable_domains() -> frozenset[str]:
    text = resources.files("advocado.domain").joinpath("data/disposable_domains.txt").read_text()
    lines = (line.strip().lower() for line in text.splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


def normalise_email(email: str | None) -> str | None:
    """The mailbox an address really reaches: case, +tags, and Gmail's ignored dots."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def normalise_phone(phone: str | None) -> str | None:
    """Digits only, last 11 (a CN mobile; enough to ignore +86 / 0086 / spaces)."""
    digits = "".join(ch for ch in phone or "" if ch.isdigit())
    return digits[-11:] if len(digits) >= 6 else None


@dataclass(frozen=True)
class Identity:
    customer_id: int
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    visitor_ids: frozenset[str] = frozenset()
    ip_user_agents: frozenset[tuple[str, str]] = frozenset()  # (ip hash, user agent)
    payments: frozenset[str] = frozenset()
    ip: str | None = None  # the friend's raw IP at signup, for the IP block list only


@dataclass(frozen=True)
class Finding:
    rule: str
    action: str  # review / reject
    values: dict[str, str]
    en: str
    zh: str

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "action": self.action,
            "values": self.values,
            "en": self.en,
            "zh": self.zh,
        }


@dataclass(frozen=True)
class Verdict:
    decision: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """One line, both languages: what the operator and the advocate are told."""
        return " | ".join(f"{f.en} / {f.zh}" for f in self.findings)


def _similar(a: str | None, b: str | None, threshold: float = 0.85) -> float:
    if not a or not b:
        return 0.0
    ratio = difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio()
    return ratio if ratio >= threshold else 0.0


def _in_blocked_ips(ip: str | None, blocked: Iterable[str]) -> str | None:
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    for entry in blocked:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return entry
        except ValueError:
            continue
    return None


def check(
    program: ProgramConfig,
    *,
    advocate: Identity,
    friend: Identity,
    referrals_last_hour: int,
    unique_clicks_last_day: int,
    referrer_hosts: Iterable[str] = (),
) -> Verdict:
    """Every rule that is not off, on the advocate and the friend: the findings, and the
    verdict (reject if any rejecting rule fired, else review if any fired, else allow)."""
    found: list[Finding] = []

    def fire(rule: str, values: dict[str, str], en: str, zh: str) -> None:
        action = program.fraud.get(rule, "off")
        if action != "off":
            found.append(Finding(rule, action, values, en, zh))

    if advocate.customer_id == friend.customer_id:
        fire(
            "self_referral",
            {"customer_id": str(friend.customer_id)},
            "the friend is the advocate",
            "被推荐人即推荐人本人",
        )
    a_mail, f_mail = normalise_email(advocate.email), normalise_email(friend.email)
    if a_mail and a_mail == f_mail:
        fire(
            "same_email",
            {"advocate": advocate.email or "", "friend": friend.email or "", "normalised": a_mail},
            f"same mailbox as the advocate ({a_mail})",
            f"与推荐人邮箱相同（{a_mail}）",
        )
    a_phone, f_phone = normalise_phone(advocate.phone), normalise_phone(friend.phone)
    if a_phone and a_phone == f_phone:
        fire("same_phone", {"phone": f_phone}, "same phone as the advocate", "与推荐人手机号相同")
    if shared := advocate.payments & friend.payments:
        fire(
            "same_payment",
            {"payment": sorted(shared)[0]},
            "same payment method as the advocate",
            "与推荐人使用同一支付方式",
        )
    if shared_device := advocate.visitor_ids & friend.visitor_ids:
        fire(
            "same_device",
            {"visitor_id": sorted(shared_device)[0]},
            "same device (visitor cookie) as the advocate",
            "与推荐人为同一设备（访客Cookie）",
        )
    if shared_net := advocate.ip_user_agents & friend.ip_user_agents:
        ip_hash, agent = sorted(shared_net)[0]
        fire(
            "same_ip_user_agent",
            {"ip_hash": ip_hash, "user_agent": agent[:120]},
            "same IP address and browser as the advocate",
            "与推荐人IP地址及浏览器相同",
        )
    name_ratio = _similar(advocate.name, friend.name)
    mail_ratio = 0.0
    if a_mail and f_mail and a_mail != f_mail:
        mail_ratio = _similar(a_mail.split("@")[0], f_mail.split("@")[0])
    if name_ratio or mail_ratio:
        fire(
            "similar_identity",
            {
                "names": f"{advocate.name} ~ {friend.name}",
                "name_similarity": f"{name_ratio:.2f}",
                "email_similarity": f"{mail_ratio:.2f}",
            },
            "name or email very like the advocate's",
            "姓名或邮箱与推荐人高度相似",
        )
    if referrals_last_hour >= program.velocity_per_hour:
        fire(
            "velocity",
            {
                "referrals_last_hour": str(referrals_last_hour + 1),
                "limit": str(program.velocity_per_hour),
            },
            f"{referrals_last_hour + 1} referrals in one hour (limit {program.velocity_per_hour})",
            f"一小时内推荐{referrals_last_hour + 1}人（上限{program.velocity_per_hour}）",
        )
    domain = (f_mail or "").rpartition("@")[2]
    if domain and domain in disposable_domains():
        fire(
            "disposable_email",
            {"domain": domain},
            f"disposable email domain {domain}",
            f"一次性邮箱域名 {domain}",
        )
    blocked = None
    if f_mail and (friend.email or "").strip().lower() in program.blocklist_emails:
        blocked = ("email", (friend.email or "").strip().lower())
    elif f_mail and f_mail in program.blocklist_emails:
        blocked = ("email", f_mail)
    elif domain and domain in program.blocklist_domains:
        blocked = ("domain", domain)
    elif entry := _in_blocked_ips(friend.ip, program.blocklist_ips):
        blocked = ("ip", entry)
    if blocked:
        fire(
            "blocklist",
            {blocked[0]: blocked[1]},
            f"on the block list ({blocked[0]} {blocked[1]})",
            f"命中黑名单（{blocked[0]} {blocked[1]}）",
        )
    coupon_host = next((h for h in referrer_hosts if any(s in h for s in COUPON_SITES)), None)
    if unique_clicks_last_day > program.leaked_unique_clicks_per_day or coupon_host:
        fire(
            "leaked_code",
            {
                "unique_clicks_last_day": str(unique_clicks_last_day),
                "limit": str(program.leaked_unique_clicks_per_day),
                "coupon_site": coupon_host or "",
            },
            "code looks leaked to the public (unusual click spread"
            + (f", from {coupon_host})" if coupon_host else ")"),
            "推荐码疑似被公开传播（点击来源异常"
            + (f"，来自{coupon_host}）" if coupon_host else "）"),
        )
    if any(f.action == REJECT for f in found):
        return Verdict(REJECT, found)
    return Verdict(REVIEW if found else ALLOW, found)
