"""Message templates (shipped, and a brand's overrides in the database) with previews, and the
advocate's script library (seed 004) to copy. See channels/render.py for what a template can
use."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import Engine, delete, select

from advocado import clock
from advocado.channels import render as templates
from advocado.channels.config import messaging_config
from advocado.domain.messaging import LOCALES
from advocado.services.messaging import MessagingError, template_source
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import MessageTemplate

NAME = re.compile(r"^[a-z][a-z0-9_]{1,99}$")
SCRIPTS = Path(templates.__file__).parent / "scripts" / "library.yaml"
SCRIPT_STYLES = ("benefit", "emotional", "scenario")
SCRIPT_FORMATS = ("moments", "private")


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    locale: str
    origin: str  # shipped / override
    subject: str


def _check_locale(locale: str) -> None:
    if locale not in LOCALES:
        raise MessagingError(f"locale {locale!r}: expected one of {', '.join(LOCALES)}")


def list_templates(engine: Engine) -> list[TemplateInfo]:
    with read_only(engine) as session:
        overrides = {(r.name, r.locale): r for r in session.scalars(select(MessageTemplate))}
    found: list[TemplateInfo] = []
    names = sorted(set(templates.shipped_names()) | {name for name, _ in overrides})
    for name in names:
        for locale in LOCALES:
            row = overrides.get((name, locale))
            if row is not None:
                found.append(TemplateInfo(name, locale, "override", row.subject))
                continue
            shipped = templates.shipped_source(name, locale)
            if shipped is not None:
                found.append(TemplateInfo(name, locale, "shipped", shipped.subject))
    return found


def save_template(
    engine: Engine, *, name: str, locale: str, subject: str, text: str, html: str | None
) -> TemplateInfo:
    """A brand's version of a template in one locale (replaces an earlier override). It must
    parse, and a shipped template's override must render with the sample data."""
    if not NAME.match(name):
        raise MessagingError(f"name {name!r}: lower-case letters, digits and _, 2-100 long")
    _check_locale(locale)
    if not subject.strip():
        raise MessagingError("subject: required")
    if not text.strip():
        raise MessagingError("text: required (the plain-text part of every message)")
    source = templates.Source(subject.strip(), text, html or None, "override")
    try:
        templates.compile_check(source, name=name, locale=locale)
        if name in templates.shipped_names():
            _preview(source, name=name, locale=locale, context=None)
    except templates.TemplateProblem as problem:
        raise MessagingError(str(problem)) from None
    with unit_of_work(engine) as session:
        row = session.scalars(
            select(MessageTemplate).where(
                MessageTemplate.name == name, MessageTemplate.locale == locale
            )
        ).first()
        if row is None:
            row = MessageTemplate(name=name, locale=locale, subject="", text_body="")
            session.add(row)
        row.subject, row.text_body, row.html_body = source.subject, text, source.html
        row.updated_at = clock.now()
    return TemplateInfo(name, locale, "override", source.subject)


def delete_template(engine: Engine, *, name: str, locale: str) -> bool:
    """Drops a brand's override (the shipped one applies again)."""
    with unit_of_work(engine) as session:
        gone = session.execute(
            delete(MessageTemplate).where(
                MessageTemplate.name == name, MessageTemplate.locale == locale
            )
        ).rowcount
    return bool(gone)


def source_of(engine: Engine, *, name: str, locale: str) -> dict[str, str]:
    """The template's current text in this locale (yours, else shipped), for editing."""
    _check_locale(locale)
    with read_only(engine) as session:
        try:
            source = template_source(session, name, locale)
        except templates.TemplateProblem as problem:
            raise MessagingError(str(problem)) from None
    return {"subject": source.subject, "text": source.text, "html": source.html or ""}


def _preview(
    source: templates.Source, *, name: str, locale: str, context: Mapping[str, Any] | None
) -> dict[str, Any]:
    config = messaging_config()
    values = templates.sample_context(name, locale)
    if name == "review_ask":
        values["review_links"] = [{"name": r.name, "url": r.url} for r in config.review_links]
    values.update(context or {})
    rendered = templates.render(
        source,
        name=name,
        locale=locale,
        context=values,
        secret="preview",
        message_id=0,
        base_url=config.base_url,
        sender=config.sender_identity,
        unsubscribe_url=None if name == "referral_notice" else f"{config.base_url}/u/preview",
    )
    return {
        "name": name,
        "locale": locale,
        "origin": source.origin,
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "links": [{"url": url, "label": label} for _, url, label in rendered.links],
    }


def preview_template(
    engine: Engine, *, name: str, locale: str, context: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The template as a customer in `locale` would get it, with sample data (overridable)."""
    _check_locale(locale)
    with read_only(engine) as session:
        try:
            source = template_source(session, name, locale)
        except templates.TemplateProblem as problem:
            raise MessagingError(str(problem)) from None
    try:
        return _preview(source, name=name, locale=locale, context=context)
    except templates.TemplateProblem as problem:
        raise MessagingError(str(problem)) from None


# --- the script library ----------------------------------------------------------------------


@cache
def _library() -> list[dict[str, Any]]:
    return yaml.safe_load(SCRIPTS.read_text("utf-8"))["scripts"]


@cache
def _script_env() -> SandboxedEnvironment:
    return SandboxedEnvironment(autoescape=False, undefined=jinja2.ChainableUndefined)


DEFAULT_FILL = {
    "en": {"brand": "our brand", "friend_offer": "a welcome gift", "problem": "that problem"},
    "zh-CN": {"brand": "我们的品牌", "friend_offer": "新人礼", "problem": "那个问题"},
    "zh-TW": {"brand": "我們的品牌", "friend_offer": "新人禮", "problem": "那個問題"},
}


def list_scripts(
    *,
    locale: str = "en",
    style: str | None = None,
    format: str | None = None,
    fill: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """The shipped scripts in one locale, optionally of one style/format, with the advocate's
    code, link etc. filled in where given (placeholders left visible otherwise)."""
    _check_locale(locale)
    if style is not None and style not in SCRIPT_STYLES:
        raise MessagingError(f"style {style!r}: expected one of {', '.join(SCRIPT_STYLES)}")
    if format is not None and format not in SCRIPT_FORMATS:
        raise MessagingError(f"format {format!r}: expected one of {', '.join(SCRIPT_FORMATS)}")
    values = {**DEFAULT_FILL[locale], "code": "{code}", "share_url": "{share_url}",
              "brand": messaging_config().sender_identity}  # fmt: skip
    values.update({k: v for k, v in (fill or {}).items() if v})
    found = []
    for script in _library():
        if (style and script["style"] != style) or (format and script["format"] != format):
            continue
        text = _script_env().from_string(script["text"][locale]).render(values)
        found.append({"id": script["id"], "style": script["style"], "format": script["format"],
                      "locale": locale, "text": text})  # fmt: skip
    return found
