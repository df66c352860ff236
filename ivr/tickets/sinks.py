"""Where tickets go: one small client per outside service, each failure sorted into retry or not.

Retrying happens in the worker, on a schedule kept in Redis; a client's job is to make one
attempt with a timeout and an idempotency key, and to say whether another attempt could help.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin

import requests

from ivr.errors import IvrError
from ivr.settings import Settings
from ivr.tickets.config import SinkSpec
from ivr.tickets.model import Ticket
from ivr.tickets.recordings import CONTENT_TYPES, retry_after_seconds

log = logging.getLogger(__name__)

TIMEOUT = (5.0, 30.0)
SMTP_TIMEOUT = 30.0


class SinkRetry(IvrError):
    """An attempt that failed in a way another attempt may not: timeouts, 408, 429, 5xx."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SinkRefused(IvrError):
    """An attempt the service refused for good (a 4xx other than 429)."""


@dataclass(frozen=True)
class Delivery:
    """A ticket as sinks receive it: the ticket and its audio, when kept."""

    ticket: Ticket
    audio: Path | None

    def summary(self) -> str:
        """The call's details and transcript as plain text, for e-mail and helpdesk bodies."""
        t = self.ticket
        lines = [
            f"Ticket {t.id}: voicemail from {t.from_} to {t.to}",
            f"Received: {t.created_at.isoformat(timespec='seconds')}",
        ]
        if t.caller_local and t.caller_local.get("local_time"):
            lines.append(f"Caller's local time: {t.caller_local['local_time']}")
        lines += [
            f"Flow: {t.flow}  Queue: {t.queue}  Language: {t.language}",
            f"Length: {t.recording.seconds} s  Recording: {t.recording.url}",
        ]
        for tried in t.pools_tried:
            when = f" ({tried['local_time']} there)" if tried.get("local_time") else ""
            lines.append(f"Pool {tried['pool']}: {tried['reason']}{when}")
        lines += ["", "Transcript:", str(t.transcript)]
        return "\n".join(lines)

    def subject(self) -> str:
        """A subject line naming the ticket and the caller."""
        return f"[{self.ticket.id}] Voicemail from {self.ticket.from_}"


class Sink(Protocol):
    """Something a ticket can be delivered to."""

    name: str

    def deliver(self, delivery: Delivery) -> None:
        """One attempt; raises SinkRetry or SinkRefused when it fails."""


class HttpService:
    """HTTP with the product's timeouts, idempotency key and failure sorting, in one place."""

    def __init__(self, session: requests.Session | None = None, timeout: float | None = None):
        self.session = session or requests.Session()
        self.timeout: Any = (TIMEOUT[0], timeout) if timeout else TIMEOUT

    def send(
        self, method: str, url: str, idempotency_key: str | None = None, **kwargs: Any
    ) -> requests.Response:
        """Make one request; a 2xx answer, else SinkRetry or SinkRefused."""
        headers = dict(kwargs.pop("headers", None) or {})
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        try:
            # Followed, a redirect turns a POST into a body-less GET (301-303) whose 2xx would
            # pass for a delivery, or sends the signed ticket wherever the answer points.
            answer = self.session.request(
                method, url, headers=headers, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.RequestException as exc:
            raise SinkRetry(f"{type(exc).__name__}: {exc}") from None
        if 200 <= answer.status_code < 300:
            return answer
        if 300 <= answer.status_code < 400:
            where = urljoin(url, answer.headers.get("Location") or "") or "nowhere"
            raise SinkRefused(
                f"HTTP {answer.status_code}: redirected to {where} (give the sink that URL)"
            )
        if answer.status_code in (408, 429) or answer.status_code >= 500:  # 408: a timeout too
            wait = retry_after_seconds(answer.headers.get("Retry-After"))
            raise SinkRetry(f"HTTP {answer.status_code}", wait)
        raise SinkRefused(f"HTTP {answer.status_code}: {answer.text[:200]}")


def ticket_body(ticket: Ticket) -> bytes:
    """The JSON a webhook receives: the ticket's one serialized form."""
    return json.dumps(ticket.as_dict(), ensure_ascii=False, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the exact body>`, as X-IVR-Signature carries it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSink:
    """POST the ticket as signed JSON."""

    def __init__(self, name: str, url: str, secret: str, timeout: float | None = None) -> None:
        self.name = name
        self.url = url
        self.secret = secret
        self.http = HttpService(timeout=timeout)

    def deliver(self, delivery: Delivery) -> None:
        """POST the ticket; any 2xx is delivered."""
        body = ticket_body(delivery.ticket)
        headers = {
            "Content-Type": "application/json",
            "X-IVR-Signature": signature(self.secret, body),
        }
        self.http.send("POST", self.url, delivery.ticket.id, data=body, headers=headers)


class EmailSink:
    """Mail the ticket with the recording attached, over SMTP with STARTTLS or TLS."""

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.host = str(options["host"])
        self.starttls = bool(options.get("starttls", False))
        self.tls = bool(options.get("tls", False))
        self.port = int(options.get("port") or (465 if self.tls else 587 if self.starttls else 25))
        self.username = options.get("username")
        self.password = options.get("password")
        self.sender = str(options["from"])
        to = options["to"]
        self.to = [to] if isinstance(to, str) else list(to)

    def message(self, delivery: Delivery) -> EmailMessage:
        """The mail of a ticket; its Message-ID is the ticket's, so a resend is recognisable."""
        mail = EmailMessage()
        mail["Subject"] = delivery.subject()
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.to)
        mail["Message-ID"] = f"<{delivery.ticket.id}.{delivery.ticket.recording_sid}@ivr>"
        # RFC 5322 requires a Date and smtplib adds none; the ticket's keeps each resend the same.
        mail["Date"] = format_datetime(delivery.ticket.created_at.astimezone(UTC))
        mail.set_content(delivery.summary())
        if delivery.audio is not None:
            kind = delivery.audio.suffix.lstrip(".")
            subtype = CONTENT_TYPES.get(kind, "audio/wav").split("/")[1]
            mail.add_attachment(
                delivery.audio.read_bytes(),
                maintype="audio",
                subtype=subtype,
                filename=f"{delivery.ticket.id}.{kind}",
            )
        return mail

    def deliver(self, delivery: Delivery) -> None:
        """Send the mail; 4xx SMTP answers and lost connections are retried, 5xx are not."""
        mail = self.message(delivery)
        context = ssl.create_default_context()
        try:
            smtp: smtplib.SMTP
            if self.tls:
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=SMTP_TIMEOUT, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=SMTP_TIMEOUT)
            with smtp:
                if self.starttls:
                    smtp.starttls(context=context)
                if self.username and self.password:
                    smtp.login(str(self.username), str(self.password))
                smtp.send_message(mail)
        except smtplib.SMTPAuthenticationError as exc:
            raise SinkRefused(f"SMTP login refused: {exc.smtp_code}") from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(500 <= code < 600 for code in codes):
                raise SinkRefused(f"SMTP refused the recipients: {codes}") from None
            raise SinkRetry(f"SMTP recipients: {codes}") from None
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                raise SinkRefused(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from None
            raise SinkRetry(f"SMTP {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise SinkRetry(f"SMTP: {type(exc).__name__}: {exc}") from None


class ZendeskSink:
    """Zendesk's Tickets API: the recording uploaded first, then the ticket citing its token."""

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        base = options.get("url") or f"https://{options['subdomain']}.zendesk.com"
        self.base = str(base).rstrip("/")
        self.auth = (f"{options['email']}/token", str(options["token"]))
        self.http = HttpService()

    def deliver(self, delivery: Delivery) -> None:
        """Upload the audio, then create the ticket (Idempotency-Key: the ticket id)."""
        ticket = delivery.ticket
        uploads: list[str] = []
        if delivery.audio is not None:
            kind = delivery.audio.suffix.lstrip(".")
            answer = self.http.send(
                "POST",
                f"{self.base}/api/v2/uploads.json",
                params={"filename": f"{ticket.id}.{kind}"},
                data=delivery.audio.read_bytes(),
                headers={"Content-Type": CONTENT_TYPES.get(kind, "audio/wav")},
                auth=self.auth,
            )
            try:
                uploads.append(str(answer.json()["upload"]["token"]))
            except (ValueError, KeyError, TypeError):
                raise SinkRetry("Zendesk's upload answer has no token") from None
        body = {
            "ticket": {
                "subject": delivery.subject(),
                "comment": {"body": delivery.summary(), "uploads": uploads},
                "requester": {"name": ticket.from_},
                "external_id": ticket.id,
                "tags": ["ivr", "voicemail", ticket.queue or "no-queue"],
            }
        }
        self.http.send(
            "POST", f"{self.base}/api/v2/tickets.json", ticket.id, json=body, auth=self.auth
        )


class FreshdeskSink:
    """Freshdesk's Tickets API: source phone (3), the recording as a multipart attachment.

    Freshdesk takes no idempotency key, so a create whose answer was lost (a timeout, a dropped
    connection, a 5xx after the write, a worker killed mid-request) may have made the ticket all
    the same. Each attempt therefore first looks for it among the tickets changed since ours
    was made, by the `[ticket id]` its subject starts with: one list request per voicemail,
    against a ticket made twice. A first attempt looks too, as `ivr tickets retry` starts a
    sink's count of attempts over.
    """

    LOOKUP_PAGES = 10  # pages of recent tickets searched before creating again
    PAGE_SIZE = 100  # the most Freshdesk lists in one page

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        base = options.get("url") or f"https://{options['domain']}"
        self.base = str(base).rstrip("/")
        self.auth = (str(options["api_key"]), "X")
        self.http = HttpService()

    def deliver(self, delivery: Delivery) -> None:
        """Create the ticket with its attachment, unless an earlier attempt did."""
        ticket = delivery.ticket
        if self.made_before(delivery):
            return
        fields = {
            "subject": delivery.subject(),
            "description": "<pre>" + _html(delivery.summary()) + "</pre>",
            "phone": ticket.from_,
            "name": ticket.from_,
            "status": "2",
            "priority": "1",
            "source": "3",
            "tags[]": "ivr",
        }
        files: list[tuple[str, tuple[str, bytes, str]]] = []
        if delivery.audio is not None:
            kind = delivery.audio.suffix.lstrip(".")
            content = delivery.audio.read_bytes()
            files.append(("attachments[]", (f"{ticket.id}.{kind}", content, CONTENT_TYPES[kind])))
        self.http.send(
            "POST",
            f"{self.base}/api/v2/tickets",
            ticket.id,
            data=fields,
            files=files or None,
            auth=self.auth,
        )

    def made_before(self, delivery: Delivery) -> bool:
        """Whether Freshdesk already has this ticket: newest first among those changed since a
        minute before it was made here."""
        since = delivery.ticket.created_at.astimezone(UTC) - timedelta(minutes=1)
        params = {
            "updated_since": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "order_by": "created_at",
            "order_type": "desc",
            "per_page": str(self.PAGE_SIZE),
        }
        prefix = delivery.subject().partition(" ")[0] + " "  # "[T-20261203-0001] "
        for page in range(1, self.LOOKUP_PAGES + 1):
            try:
                answer = self.http.send(
                    "GET",
                    f"{self.base}/api/v2/tickets",
                    params=params | {"page": str(page)},
                    auth=self.auth,
                )
            except SinkRefused as exc:
                # A key that may create tickets but not list them: a ticket made twice is
                # better than one never made.
                log.warning(
                    "%s: cannot look for ticket %s (%s)", self.name, delivery.ticket.id, exc
                )
                return False
            try:
                found = answer.json()
                subjects = [str(t.get("subject") or "") for t in found]
            except (ValueError, TypeError, AttributeError):
                raise SinkRetry("Freshdesk's ticket list is not a list of tickets") from None
            if any(subject.startswith(prefix) for subject in subjects):
                return True
            if len(found) < self.PAGE_SIZE:
                return False
        return False


class SmsSink:
    """A text to the caller with the ticket number, through Twilio's Messages API (opt-in)."""

    def __init__(self, name: str, options: Mapping[str, Any], settings: Settings) -> None:
        if not settings.account_sid or not settings.auth_token:
            raise IvrError("an sms sink needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        self.name = name
        self.sender = str(options["from"])
        base = str(options.get("api_url") or settings.twilio_api_url).rstrip("/")
        self.url = f"{base}/2010-04-01/Accounts/{settings.account_sid}/Messages.json"
        self.auth = (settings.account_sid, settings.auth_token)
        self.http = HttpService()

    def deliver(self, delivery: Delivery) -> None:
        """Send the text."""
        ticket = delivery.ticket
        text = f"We received your voicemail. Your ticket number is {ticket.id}."
        self.http.send(
            "POST",
            self.url,
            ticket.id,
            data={"To": ticket.from_, "From": self.sender, "Body": text},
            auth=self.auth,
        )


def build_sinks(specs: list[SinkSpec], settings: Settings, env: Mapping[str, str]) -> list[Sink]:
    """The clients of the configured sinks, their `${VAR}`s read from `env`."""
    sinks: list[Sink] = []
    for spec in specs:
        options = spec.resolved(env)
        if spec.type == "webhook":
            timeout = options.get("timeout")
            sinks.append(
                WebhookSink(
                    spec.name, options["url"], options["secret"], timeout and float(timeout)
                )
            )
        elif spec.type == "email":
            sinks.append(EmailSink(spec.name, options))
        elif spec.type == "zendesk":
            sinks.append(ZendeskSink(spec.name, options))
        elif spec.type == "freshdesk":
            sinks.append(FreshdeskSink(spec.name, options))
        elif spec.type == "sms":
            sinks.append(SmsSink(spec.name, options, settings))
    return sinks


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
