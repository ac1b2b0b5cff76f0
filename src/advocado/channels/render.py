"""Message templates: Jinja2, sandboxed, per locale (en, zh-CN, zh-TW), HTML autoescaped.

A shipped template is two files in channels/templates/: `{name}.{locale}.txt` (first line
`Subject: …`, a blank line, then the text body) and `{name}.{locale}.html` (usually
`{% extends "_layout.html" %}`). A brand overrides one per locale in the database
(message_templates, via the API or console), without code changes.

What a template can use:
- always: `name` (the customer's name, or a greeting word), `locale`, `sender` (the brand's
  identity), `unsubscribe_url` (marketing only), and `track(url, label)`, which turns a URL
  into a tracked short link `/m/{token}` (every link in a message should go through it);
- `review_ask`: `review_links` (list of {name, url}; default: the ADVOCADO_REVIEW_LINKS setting);
- `referral_invite`: `code`, `share_url`, `offer` (the double-sided offer in words);
- `ugc_invite`: `hashtag`, `prompt`, `prize`, `entry_url`, optionally `ends_on`;
- `referral_notice`: `text_en`, `text_zh` (from referral_notices).
A name the template uses that the context lacks is an error (StrictUndefined); optional ones
are written `{{ x | default('') }}` or `{% if x is defined %}`.

The footer with the sender's identity and the unsubscribe link is added to every marketing
message even if an override leaves it out (compliance is not a template's choice).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jinja2
import zhconv
from jinja2.sandbox import SandboxedEnvironment

from advocado.domain.messaging import LOCALES

TEMPLATES = Path(__file__).parent / "templates"

FOOTER = {
    "en": ("Sent by {sender}.", "Unsubscribe", "Hi"),
    "zh-CN": ("发件方：{sender}。", "退订", "您好"),
    "zh-TW": ("寄件者：{sender}。", "取消訂閱", "您好"),
}


class TemplateProblem(ValueError):
    """A template that cannot be found, parsed or rendered; says which and why."""


@dataclass(frozen=True)
class Source:
    subject: str
    text: str
    html: str | None
    origin: str  # "shipped" or "override"


@dataclass
class Rendered:
    subject: str
    text: str
    html: str | None
    links: list[tuple[str, str, str | None]] = field(default_factory=list)  # token, url, label


def link_token(secret: str, message_id: int, url: str) -> str:
    """Deterministic per (message, url): a re-render on retry yields the same short links."""
    digest = hmac.new(secret.encode(), f"{message_id}\0{url}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode()


def split_subject(text: str, *, origin: str) -> tuple[str, str]:
    first, _, rest = text.partition("\n")
    if not first.startswith("Subject:"):
        raise TemplateProblem(f"{origin}, line 1: the text template must start with 'Subject: …'")
    return first.removeprefix("Subject:").strip(), rest.lstrip("\n")


@cache
def _environments() -> tuple[SandboxedEnvironment, SandboxedEnvironment]:
    loader = jinja2.FileSystemLoader(TEMPLATES)
    text = SandboxedEnvironment(
        loader=loader, autoescape=False, undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
    )  # fmt: skip
    html = SandboxedEnvironment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    for env in (text, html):
        env.filters["traditional"] = to_traditional
    return text, html


@lru_cache(maxsize=256)
def _compiled(html: bool, body: str) -> jinja2.Template:
    """Compiling is most of a render's cost: each source is compiled once per process (an
    edited override is a different string, so it is compiled anew)."""
    text_env, html_env = _environments()
    return (html_env if html else text_env).from_string(body)


@cache
def shipped_names() -> tuple[str, ...]:
    return tuple(sorted({p.name.split(".")[0] for p in TEMPLATES.glob("*.en.txt")}))


def shipped_source(name: str, locale: str) -> Source | None:
    path = TEMPLATES / f"{name}.{locale}.txt"
    if not path.is_file():
        return None
    subject, text = split_subject(path.read_text("utf-8"), origin=path.name)
    html_path = TEMPLATES / f"{name}.{locale}.html"
    html = html_path.read_text("utf-8") if html_path.is_file() else None
    return Source(subject, text, html, "shipped")


def compile_check(source: Source, *, name: str, locale: str) -> None:
    """Parse every part; a syntax error names the part and line."""
    text_env, html_env = _environments()
    for part, body, env in (
        ("subject", source.subject, text_env),
        ("text", source.text, text_env),
        ("html", source.html, html_env),
    ):
        if body is None:
            continue
        try:
            env.parse(body)
        except jinja2.TemplateSyntaxError as error:
            raise TemplateProblem(
                f"template {name} ({locale}), {part}, line {error.lineno}: {error.message}"
            ) from None


def render(
    source: Source,
    *,
    name: str,
    locale: str,
    context: Mapping[str, Any],
    secret: str,
    message_id: int,
    base_url: str,
    sender: str,
    unsubscribe_url: str | None,
) -> Rendered:
    """Renders subject, text and HTML; `track()` registers each link once."""
    rendered = Rendered("", "", None)
    seen: dict[str, str] = {}

    def track(url: str, label: str | None = None) -> str:
        url = str(url)
        if url not in seen:
            token = link_token(secret, message_id, url)
            seen[url] = token
            rendered.links.append((token, url, label))
        return f"{base_url}/m/{seen[url]}"

    sent_by, unsubscribe_word, hello = FOOTER.get(locale, FOOTER["en"])
    values: dict[str, Any] = {
        **context,
        "locale": locale,
        "sender": sender,
        "unsubscribe_url": unsubscribe_url,
        "track": track,
    }
    if not values.get("name"):
        values["name"] = hello
    text_env, html_env = _environments()

    def run(env: SandboxedEnvironment, body: str, part: str) -> str:
        try:
            return _compiled(env is html_env, body).render(values)
        except jinja2.TemplateError as error:
            line = getattr(error, "lineno", None)
            where = f", line {line}" if line else ""
            raise TemplateProblem(f"template {name} ({locale}), {part}{where}: {error}") from None

    rendered.subject = " ".join(run(text_env, source.subject, "subject").split())
    text = run(text_env, source.text, "text").rstrip() + "\n"
    footer = "\n-- \n" + sent_by.format(sender=sender)
    if unsubscribe_url:
        footer += f"\n{unsubscribe_word}: {unsubscribe_url}"
    rendered.text = text + footer + "\n"
    if source.html is not None:
        html = run(html_env, source.html, "html")
        if unsubscribe_url and unsubscribe_url not in html:
            escaped = jinja2.utils.markupsafe.escape
            extra = (
                f'<p style="font-size:12px;color:#666">{escaped(sent_by.format(sender=sender))}'
                f' <a href="{escaped(unsubscribe_url)}">{escaped(unsubscribe_word)}</a></p>'
            )
            html = html.replace("</body>", extra + "</body>") if "</body>" in html else html + extra
        rendered.html = html
    return rendered


def to_traditional(text: str) -> str:
    return zhconv.convert(text, "zh-tw")


SAMPLES: dict[str, dict[str, Any]] = {
    "review_ask": {
        "review_links": [
            {"name": "App Store", "url": "https://apps.apple.com/app/id0000000000"},
            {"name": "G2", "url": "https://www.g2.com/products/example/reviews"},
            {"name": "大众点评", "url": "https://www.dianping.com/shop/example"},
        ],
    },
    "referral_invite": {
        "code": "ALEX-7K2Q",
        "share_url": "https://example.com/r/ALEX-7K2Q",
        "offer": "You get ¥50 credit, your friend gets ¥50 off the first order.",
    },
    "ugc_invite": {
        "hashtag": "#MyAdvocadoStory#",
        "prompt": "Show us the moment our product made your day.",
        "prize": "A year of Premium for the three best stories",
        "entry_url": "https://example.com/challenges/story/enter",
        "ends_on": "2026-12-31",
    },
    "referral_notice": {
        "text_en": "Li Lei signed up with your code. You get your reward when they order.",
        "text_zh": "李雷用您的推荐码注册了。对方下单后您将获得奖励。",
    },
}


def sample_context(name: str, locale: str) -> dict[str, Any]:
    names = {"en": "Alex", "zh-CN": "张三", "zh-TW": "陳小明"}
    return {"name": names.get(locale, "Alex"), **SAMPLES.get(name, {})}


__all__ = [
    "LOCALES",
    "Rendered",
    "Source",
    "TemplateProblem",
    "compile_check",
    "link_token",
    "render",
    "sample_context",
    "shipped_names",
    "shipped_source",
]
