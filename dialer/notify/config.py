"""The ``[notify]`` settings: the delivery worker's pace, the mail server and the SMS gateway.

    [notify]                 # present: this node runs the delivery worker
    max_attempts = 12        # then the message is FAILED (``dialer notify retry`` puts it back)
    backoff_s = 30.0         # first pause after a temporary failure; doubles each try, with jitter
    backoff_max_s = 3600.0
    [notify.smtp]
    host = "mail.example.com"
    port = 587
    from = "Call center <rdv@example.com>"
    username = "rdv@example.com"
    password_file = "/etc/dialer/smtp-password"
    [notify.sms]
    url = "https://sms.example.com/send"
    auth = "bearer"
    token_file = "/etc/dialer/sms-token"

Parsed here, not in ``dialer.settings``, so the keys live beside the code that uses
them; ``dialer.settings`` calls :func:`parse_notify` and names every bad key at once.
Secrets come from ``*_file`` (read only by commands that send), else the environment
(``DIALER_SMTP_PASSWORD``, ``DIALER_SMS_PASSWORD``, ``DIALER_SMS_TOKEN``), else the
key itself.  A secret is never part of a repr.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

ENV_SMTP_PASSWORD = "DIALER_SMTP_PASSWORD"
ENV_SMS_PASSWORD = "DIALER_SMS_PASSWORD"
ENV_SMS_TOKEN = "DIALER_SMS_TOKEN"

SmsAuth = Literal["none", "basic", "bearer"]
SmsBody = Literal["json", "form", "none"]


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    sender: str  # the From: header ("from" in the file)
    port: int = 587
    starttls: bool = True  # upgrade the connection before login (port 587); false: plain (tests, relays)
    tls: bool = False  # implicit TLS from the first byte (port 465)
    username: str = ""
    password: str = field(default="", repr=False)
    timeout_s: float = 30.0
    ca_file: str = ""  # trust this CA (or self-signed certificate) besides the system's
    message_domain: str = ""  # right-hand side of Message-IDs; default: the sender's domain


@dataclass(frozen=True)
class SmsSettings:
    url: str  # a template: {to} {text} {sender} {message_id}, URL-encoded where they stand
    sender: str = ""
    method: str = "POST"
    auth: SmsAuth = "none"
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    body: SmsBody = "json"
    # The body's fields, each a template like the URL: {"to": "{to}", "text": "{text}", ...}.
    fields: tuple[tuple[str, str], ...] = (("to", "{to}"), ("text", "{text}"), ("from", "{sender}"))
    success_statuses: tuple[int, ...] = (200, 201, 202)
    success_field: str = ""  # dotted path in the JSON answer, e.g. "result.status"; empty: status only
    success_value: str = ""
    timeout_s: float = 15.0


@dataclass(frozen=True)
class NotifySettings:
    smtp: SmtpSettings | None = None
    sms: SmsSettings | None = None
    max_attempts: int = 12  # with the default backoff: about four hours of a server down
    backoff_s: float = 30.0
    backoff_max_s: float = 3600.0
    poll_s: float = 5.0
    lease_s: float = 300.0  # a message SENDING longer than this was lost with its worker: tried again
    batch: int = 20

    def describe(self) -> str:
        """One line for ``dialer check-config``: where each channel goes (no secret)."""
        parts = []
        if self.smtp is not None:
            security = "TLS" if self.smtp.tls else "STARTTLS" if self.smtp.starttls else "no TLS"
            login = ", login" if self.smtp.username else ""
            parts.append(f"email via {self.smtp.host}:{self.smtp.port} ({security}{login})")
        if self.sms is not None:
            host = urlsplit(self.sms.url).hostname or "?"
            parts.append(f"SMS via {self.sms.method} {host} ({self.sms.auth} auth)")
        return f"{'; '.join(parts)}; {self.max_attempts} tries"


_NOTIFY_KEYS = {"max_attempts", "backoff_s", "backoff_max_s", "poll_s", "lease_s", "batch", "smtp", "sms"}
_SMTP_KEYS = {
    "host",
    "port",
    "from",
    "starttls",
    "tls",
    "username",
    "password",
    "password_file",
    "timeout_s",
    "ca_file",
    "message_domain",
}
_SMS_KEYS = {
    "url",
    "sender",
    "method",
    "auth",
    "username",
    "password",
    "password_file",
    "token",
    "token_file",
    "body",
    "fields",
    "success_statuses",
    "success_field",
    "success_value",
    "timeout_s",
}


class _Reader:
    """Typed reads from one table that report problems instead of stopping at the first."""

    def __init__(self, raw: Mapping[str, Any], where: str, problem: Callable[[str], None]) -> None:
        self.raw, self.where, self.problem = raw, where, problem

    def check_keys(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.raw) - allowed)
        if unknown:
            self.problem(
                f"{self.where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
            )

    def take(self, key: str, kind: type, default: Any) -> Any:
        if key not in self.raw:
            return default
        value = self.raw[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problem(f"{self.where}.{key}: expected {kind.__name__}, got {value!r}")
            return default
        return value

    def secret(self, key: str, env_key: str, env: Mapping[str, str], need_secrets: bool) -> str:
        """``key_file`` (read only when secrets are needed), else $env_key, else ``key``."""
        path = self.take(f"{key}_file", str, "")
        if path:
            if not need_secrets:
                return ""
            try:
                return Path(path).read_text().strip()
            except OSError as exc:
                self.problem(f"{self.where}.{key}_file: cannot read {path}: {exc.strerror}")
                return ""
        return env.get(env_key) or str(self.take(key, str, ""))


def parse_notify(
    raw: Mapping[str, Any], env: Mapping[str, str], problem: Callable[[str], None], *, need_secrets: bool
) -> NotifySettings:
    """The ``[notify]`` table as settings; every bad key goes to ``problem``."""
    top = _Reader(raw, "notify", problem)
    top.check_keys(_NOTIFY_KEYS)
    max_attempts = top.take("max_attempts", int, 12)
    if max_attempts < 1:
        problem("notify.max_attempts: must be at least 1")
        max_attempts = 1
    backoff_s = top.take("backoff_s", float, 30.0)
    backoff_max_s = top.take("backoff_max_s", float, 3600.0)
    if not 0 < backoff_s <= backoff_max_s:
        problem("notify.backoff_s: must be above 0 and at most notify.backoff_max_s")
    poll_s = top.take("poll_s", float, 5.0)
    if not 0 < poll_s <= 3600:
        problem("notify.poll_s: must be within 0..3600 seconds")
    batch = top.take("batch", int, 20)
    if batch < 1:
        problem("notify.batch: must be at least 1")
    smtp = sms = None
    if "smtp" in raw:
        smtp = _smtp(_table(raw["smtp"], "notify.smtp", problem), env, problem, need_secrets)
    if "sms" in raw:
        sms = _sms(_table(raw["sms"], "notify.sms", problem), env, problem, need_secrets)
    longest = max(smtp.timeout_s if smtp else 0.0, sms.timeout_s if sms else 0.0)
    lease_s = top.take("lease_s", float, max(300.0, 4 * longest))
    if lease_s < 2 * longest:
        problem("notify.lease_s: must be at least twice the smtp/sms timeout_s (a send ends in its lease)")
    if smtp is None and sms is None:
        problem("notify: neither [notify.smtp] nor [notify.sms]; configure one or remove [notify]")
    return NotifySettings(
        smtp=smtp,
        sms=sms,
        max_attempts=max_attempts,
        backoff_s=backoff_s,
        backoff_max_s=backoff_max_s,
        poll_s=poll_s,
        lease_s=lease_s,
        batch=batch,
    )


def _table(value: Any, where: str, problem: Callable[[str], None]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        problem(f"[{where}] must be a table")
        return {}
    return value


def _smtp(
    raw: Mapping[str, Any], env: Mapping[str, str], problem: Callable[[str], None], need_secrets: bool
) -> SmtpSettings:
    r = _Reader(raw, "notify.smtp", problem)
    r.check_keys(_SMTP_KEYS)
    host = r.take("host", str, "")
    if not host:
        problem("notify.smtp.host: missing; the mail server to send through, e.g. mail.example.com")
    sender = r.take("from", str, "")
    if "@" not in sender:
        problem('notify.smtp.from: missing or not an address; e.g. from = "Call center <rdv@example.com>"')
    port = r.take("port", int, 587)
    if not 0 < port < 65536:
        problem(f"notify.smtp.port: {port} is not a TCP port")
    starttls = r.take("starttls", bool, True)
    tls = r.take("tls", bool, False)
    if starttls and tls:
        problem("notify.smtp: starttls and tls are exclusive; tls = true for port 465, starttls for 587")
    username = r.take("username", str, "")
    password = r.secret("password", ENV_SMTP_PASSWORD, env, need_secrets)
    if username and not password and need_secrets:
        problem(f"notify.smtp: username without a password; set password_file or ${ENV_SMTP_PASSWORD}")
    timeout_s = r.take("timeout_s", float, 30.0)
    if not 0 < timeout_s <= 600:
        problem("notify.smtp.timeout_s: must be within 0..600 seconds")
    ca_file = r.take("ca_file", str, "")
    if ca_file and not Path(ca_file).is_file():
        problem(f"notify.smtp.ca_file: {ca_file} does not exist")
    return SmtpSettings(
        host=host,
        sender=sender,
        port=port,
        starttls=starttls and not tls,
        tls=tls,
        username=username,
        password=password,
        timeout_s=timeout_s,
        ca_file=ca_file,
        message_domain=r.take("message_domain", str, ""),
    )


def _sms(
    raw: Mapping[str, Any], env: Mapping[str, str], problem: Callable[[str], None], need_secrets: bool
) -> SmsSettings:
    r = _Reader(raw, "notify.sms", problem)
    r.check_keys(_SMS_KEYS)
    url = r.take("url", str, "")
    if not url.startswith(("http://", "https://")):
        problem('notify.sms.url: missing or not http(s); e.g. url = "https://sms.example.com/send?to={to}"')
    method = r.take("method", str, "POST").upper()
    if method not in ("GET", "POST", "PUT"):
        problem(f"notify.sms.method: {method!r} is not GET, POST or PUT")
    auth = r.take("auth", str, "none")
    if auth not in ("none", "basic", "bearer"):
        problem(f"notify.sms.auth: {auth!r} is not none, basic or bearer")
        auth = "none"
    username = r.take("username", str, "")
    password = r.secret("password", ENV_SMS_PASSWORD, env, need_secrets)
    token = r.secret("token", ENV_SMS_TOKEN, env, need_secrets)
    if need_secrets and auth == "basic" and not (username and password):
        problem(f"notify.sms: auth = basic needs username and password_file (or ${ENV_SMS_PASSWORD})")
    if need_secrets and auth == "bearer" and not token:
        problem(f"notify.sms: auth = bearer needs token_file (or ${ENV_SMS_TOKEN})")
    body = r.take("body", str, "json")
    if body not in ("json", "form", "none"):
        problem(f"notify.sms.body: {body!r} is not json, form or none")
        body = "json"
    fields_raw = r.take("fields", dict, None)
    fields = SmsSettings.fields
    if fields_raw is not None:
        if not all(isinstance(v, str) for v in fields_raw.values()):
            problem('notify.sms.fields: every value must be a string template, e.g. to = "{to}"')
        else:
            fields = tuple((str(k), v) for k, v in fields_raw.items())
    statuses_raw = r.take("success_statuses", list, [200, 201, 202])
    if not statuses_raw or not all(isinstance(s, int) and 100 <= s < 600 for s in statuses_raw):
        problem("notify.sms.success_statuses: a list of HTTP statuses, e.g. [200, 201, 202]")
        statuses_raw = [200, 201, 202]
    success_field = r.take("success_field", str, "")
    success_value = r.take("success_value", str, "")
    if bool(success_field) != bool(success_value):
        problem("notify.sms: success_field and success_value go together (e.g. status / ok)")
    for key, template in (("url", url), *((f"fields.{k}", v) for k, v in fields)):
        try:
            template.format(to="", text="", sender="", message_id="")
        except (KeyError, IndexError, ValueError):
            problem(
                f"notify.sms.{key}: {template!r} has a placeholder other than {{to}} {{text}} {{sender}} "
                "{message_id} (write {{ }} for a literal brace)"
            )
    timeout_s = r.take("timeout_s", float, 15.0)
    if not 0 < timeout_s <= 600:
        problem("notify.sms.timeout_s: must be within 0..600 seconds")
    return SmsSettings(
        url=url,
        sender=r.take("sender", str, ""),
        method=method,
        auth=auth,
        username=username,
        password=password,
        token=token,
        body=body,
        fields=fields,
        success_statuses=tuple(statuses_raw),
        success_field=success_field,
        success_value=success_value,
        timeout_s=timeout_s,
    )
