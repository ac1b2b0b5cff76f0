"""Email over SMTP: `ADVOCADO_SMTP_URL` = smtp://[user:pass@]host[:port][?starttls=1] or
smtps://… (add `cafile=/path/ca.pem` to trust a private CA); multipart text + HTML; RFC 8058
one-click unsubscribe headers on marketing mail.

The SMTP conversation is taken step by step so a failure says whether the message could have
been accepted: before DATA nothing was (retry); a refusal with a code is definite (4xx retry,
5xx bounced); a broken connection after the content went is "uncertain"."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formataddr, formatdate, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from advocado.channels import Outcome, Outgoing


def message_id_header(outgoing: Outgoing, domain: str) -> str:
    return f"<advocado.{outgoing.message_id}.{outgoing.attempt}@{domain}>"


def build(outgoing: Outgoing, *, mail_from: str, domain: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = mail_from
    mail["To"] = formataddr((outgoing.to_name or "", outgoing.to))
    mail["Subject"] = outgoing.subject
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = message_id_header(outgoing, domain)
    mail["X-Advocado-Message"] = str(outgoing.message_id)
    if outgoing.unsubscribe_url:
        mail["List-Unsubscribe"] = f"<{outgoing.unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # quoted-printable keeps every line under SMTP's 1000-octet limit, whatever the template
    mail.set_content(outgoing.text, cte="quoted-printable")
    if outgoing.html:
        mail.add_alternative(outgoing.html, subtype="html", cte="quoted-printable")
    mail["Content-Language"] = outgoing.locale  # after set_content, which clears Content-*
    return mail


class SmtpChannel:
    """One SMTP connection, opened on first use and reused for a batch; `close()` at the end."""

    def __init__(self, url: str, *, mail_from: str, domain: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(
                f"ADVOCADO_SMTP_URL={url!r}: expected smtp://host:port or smtps://host:port"
            )
        self.host = parts.hostname
        self.ssl = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.ssl else 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        query = parse_qs(parts.query)
        self.starttls = query.get("starttls", ["0"])[0] in ("1", "true", "yes")
        # a private CA (an in-house relay); otherwise the system's trusted CAs
        self.cafile = query.get("cafile", [None])[0]
        self.mail_from = mail_from
        self.envelope_from = parseaddr(mail_from)[1]
        self.domain = domain
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        if self._smtp is None:
            context = ssl.create_default_context(cafile=self.cafile)
            smtp: smtplib.SMTP
            if self.ssl:
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.starttls:
                    smtp.starttls(context=context)
            smtp.ehlo_or_helo_if_needed()
            if self.user:
                smtp.login(self.user, self.password or "")
            self._smtp = smtp
        return self._smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()
            self._drop()

    def send(self, outgoing: Outgoing) -> Outcome:
        mail = build(outgoing, mail_from=self.mail_from, domain=self.domain)
        provider_id = mail["Message-ID"]
        for attempt in (1, 2):  # a reused connection may have gone stale: reconnect once
            try:
                smtp = self._connect()
                code, answer = smtp.mail(self.envelope_from)
                if code != 250:
                    smtp.rset()
                    return _refused("MAIL", code, answer, definite_bounce=False)
                code, answer = smtp.rcpt(outgoing.to)
                if code not in (250, 251):
                    smtp.rset()
                    return _refused("RCPT", code, answer, definite_bounce=True)
            except smtplib.SMTPResponseException as error:
                self._drop()
                return _refused("connect", error.smtp_code, error.smtp_error, False)
            except (OSError, smtplib.SMTPException) as error:
                self._drop()
                if attempt == 2:
                    return Outcome("retry", f"before DATA: {error!r}")
                continue
            break
        try:
            code, answer = smtp.data(mail.as_bytes(policy=SMTP_POLICY))
        except smtplib.SMTPDataError as error:
            return _refused("DATA", error.smtp_code, error.smtp_error, definite_bounce=True)
        except (OSError, smtplib.SMTPException) as error:
            self._drop()
            return Outcome("uncertain", f"connection lost during DATA: {error!r}", provider_id)
        if code != 250:
            return _refused("DATA", code, answer, definite_bounce=True)
        return Outcome("sent", f"{code} {_text(answer)}", provider_id)


def _text(answer: bytes | str) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)


def _refused(step: str, code: int, answer: bytes | str, definite_bounce: bool) -> Outcome:
    detail = f"SMTP {step} {code} {_text(answer)}"[:500]
    if 500 <= code < 600 and definite_bounce:
        return Outcome("bounced", detail)
    return Outcome("retry", detail)
