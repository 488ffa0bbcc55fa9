"""The one settings object every entry point uses: ``dialer run``, ``dialer demo`` and each CLI command.

Where each setting comes from, the same for every command:

* the config file: ``--config PATH``, else ``$DIALER_CONFIG``, else ``/etc/dialer/dialer.toml``
  when it exists (no file at all: the defaults below);
* the database: ``--db URL``, else the file's ``[database] url``, else ``$DIALER_DATABASE_URL``,
  else ``/var/lib/dialer/dialer.db`` (SQLite).  ``sqlite:///`` and ``sqlite+aiosqlite:///``,
  ``postgresql://`` and ``postgresql+asyncpg://`` are all accepted; the async driver is added;
* Redis: ``--redis URL``, else ``[redis] url``, else ``$DIALER_REDIS_URL``, else none;
* operator compliance profiles: ``--profiles FILE``, else ``[compliance] profiles_file``, else
  ``profiles.toml`` beside the config file (``/etc/dialer/profiles.toml``) when it exists; without
  one, the built-in profiles apply;
* the number-hash key of the audit: ``$DIALER_NUMBER_HASH_KEY``, else the one kept in the database.

A bad or unknown key stops every command that reads the file, with a message naming each bad key
and what is expected, so a typo never turns into a silently ignored setting.  Secrets come from a
file (``secret_file``) or the environment (``DIALER_<PBX>_SECRET``); only the daemon and
``dialer check-config`` read them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialer.notify.config import NotifySettings, parse_notify

CONFIG_DIR = Path("/etc/dialer")
DEFAULT_PATH = CONFIG_DIR / "dialer.toml"
PROFILES_NAME = "profiles.toml"
DEFAULT_DATABASE_PATH = Path("/var/lib/dialer/dialer.db")
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{DEFAULT_DATABASE_PATH}"
ENV_CONFIG = "DIALER_CONFIG"
ENV_DATABASE = "DIALER_DATABASE_URL"
ENV_REDIS = "DIALER_REDIS_URL"
ENV_REDIS_NAMESPACE = "DIALER_REDIS_NAMESPACE"
ENV_HASH_KEY = "DIALER_NUMBER_HASH_KEY"
# A campaign whose ``pbx`` is this name uses the node's PBX, whatever the config calls it.
DEFAULT_PBX = "default"

PbxKind = Literal["asterisk", "freeswitch"]


class SettingsError(ValueError):
    """The configuration cannot be used; the message names each bad key and the fix."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


@dataclass(frozen=True)
class PbxSettings:
    name: str
    kind: PbxKind
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "dialer"
    secret: str = field(default="", repr=False)
    # Asterisk: where our FastAGI server listens and where the dialplan reaches it.
    fastagi_bind: str = "127.0.0.1"
    fastagi_port: int = 4573
    action_timeout_s: float = 5.0
    ping_interval_s: float = 5.0
    max_lines: int = 100  # trunk capacity: lines open at once on this PBX
    max_calls_per_second: float = 10.0
    # Asterisk on this host: the directory of the campaigns' sounds, checked before a campaign dials.
    sounds_dir: str = ""
    # FreeSWITCH only: the keys of _FREESWITCH_KEYS that the table sets (the adapter's defaults
    # stand for the others), passed through to telephony.freeswitch.adapter.FreeSwitchSettings.
    freeswitch: tuple[tuple[str, str | int | float], ...] = ()
    # Groups this PBX belongs to: a campaign naming a group dials on any of its PBXs (``group``).
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class SellerSettings:
    """Who sells (``[seller]``): printed on every sale's written confirmation."""

    name: str = ""
    address: str = ""
    email: str = ""
    phone: str = ""
    timezone: str = "Europe/Paris"  # the withdrawal period's days are counted in this zone
    confirmation_template: Path | None = None  # None: the template shipped in dialer/sales/templates


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    node_id: str = "node-1"
    pbxs: tuple[PbxSettings, ...] = ()
    tick_s: float = 0.25
    metrics_bind: str = "127.0.0.1"
    metrics_port: int = 9108
    api_bind: str = "127.0.0.1"
    api_port: int = 8080
    profiles_file: Path | None = None
    log_level: str = "INFO"
    drain_timeout_s: float = 120.0
    redis_namespace: str = "dialer:"
    number_hash_key: str | None = field(default=None, repr=False)
    # Where the file and the database URL came from, for messages (``--verbose``).
    config_path: Path | None = None
    database_source: str = "default"
    notify: NotifySettings | None = None  # [notify]: the delivery worker of email and SMS runs
    seller: SellerSettings = field(default_factory=SellerSettings)
    # ``[logging] format``: one line per event, "text" or "json" (dialer.runtime.logs).
    log_format: str = "text"
    # With Redis: how long a campaign's lease lasts without renewal (another node takes over after it).
    lease_s: float = 10.0
    # [recordings] dir: where the dialer finds the PBX's recordings (<attempt>.wav): Asterisk's
    # <astspooldir>/monitor, FreeSWITCH's recordings_dir, shared with this host.
    recordings_dir: Path = Path("/var/spool/asterisk/monitor")

    @property
    def profile_files(self) -> tuple[Path, ...]:
        return (self.profiles_file,) if self.profiles_file is not None else ()

    @property
    def pbx_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.pbxs)

    def pbx_for(self, name: str) -> PbxSettings | None:
        """The PBX a campaign names (``default``: the node's PBX), or None when it is not configured."""
        if name == DEFAULT_PBX and self.pbxs:
            return self.pbxs[0]
        return next((p for p in self.pbxs if p.name == name), None)

    def pbx_problem(self, name: str) -> str | None:
        """Why a campaign naming PBX ``name`` cannot dial on this node, or None."""
        if self.pbx_for(name) is not None:
            return None
        if any(name in p.groups for p in self.pbxs):  # a group of PBXs
            return None
        where = str(self.config_path) if self.config_path else "the config (no config file found)"
        if name == DEFAULT_PBX:
            return f"no PBX is configured in {where}; add a [pbx.<name>] table"
        known = ", ".join(self.pbx_names) or "none"
        groups = sorted({g for p in self.pbxs for g in p.groups})
        if groups:
            known += f"; groups: {', '.join(groups)}"
        return (
            f"PBX {name!r} is not configured in {where} (configured: {known}); "
            f"add [pbx.{name}] there or name a configured PBX"
        )


_TOP_KEYS = {
    "database",
    "redis",
    "node",
    "pbx",
    "pacing",
    "metrics",
    "api",
    "compliance",
    "logging",
    "shutdown",
    "notify",
    "seller",
    "recordings",
}

# While a file is parsed, problems are collected here so that every bad key is named at once.
_collector: ContextVar[list[str] | None] = ContextVar("settings_problems", default=None)


@contextmanager
def _collecting() -> Iterator[list[str]]:
    problems: list[str] = []
    token = _collector.set(problems)
    try:
        yield problems
    finally:
        _collector.reset(token)


def _problem(message: str) -> None:
    found = _collector.get()
    if found is None:
        raise SettingsError(message)
    found.append(message)


def _take(section: Mapping[str, Any], where: str, key: str, kind: type, default: Any) -> Any:
    if key not in section:
        return default
    value = section[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        _problem(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
        return default
    return value


def _check_keys(section: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = sorted(set(section) - allowed)
    if unknown:
        _problem(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, Mapping):
        _problem(f"[{name}] must be a table")
        return {}
    return value


_PBX_KEYS = {
    "type",
    "host",
    "port",
    "username",
    "secret",
    "secret_file",
    "fastagi_bind",
    "fastagi_port",
    "action_timeout_s",
    "ping_interval_s",
    "max_lines",
    "max_calls_per_second",
    "sounds_dir",
    "group",
}
# [pbx.<name>] keys only a FreeSWITCH PBX takes, with their types (FreeSwitchSettings; a test
# checks that every key of the adapter is here or among the common keys above).
_FREESWITCH_KEYS: dict[str, type] = {
    "connect_timeout_s": float,
    "reconnect_initial_s": float,
    "reconnect_max_s": float,
    "context": str,
    "answer_extension": str,
    "amd_extension": str,
    "agent_extension_prefix": str,
    "amd_variable": str,
    "amd_window_s": float,
    "park_timeout_s": float,
    "agent_ring_timeout_s": int,
    "agent_caller_id_number": str,
    "agent_caller_id_name": str,
    "message_extension": str,
    "abandon_extension": str,
}


def _pbx(name: str, raw: Mapping[str, Any], env: Mapping[str, str], need_secret: bool = True) -> PbxSettings:
    where = f"pbx.{name}"
    is_freeswitch = raw.get("type") == "freeswitch"
    _check_keys(raw, where, _PBX_KEYS | set(_FREESWITCH_KEYS) if is_freeswitch else _PBX_KEYS)
    freeswitch = tuple(
        (key, _take(raw, where, key, key_type, None))
        for key, key_type in _FREESWITCH_KEYS.items()
        if is_freeswitch and key in raw
    )
    kind: PbxKind = "asterisk"
    if raw.get("type") == "freeswitch":
        kind = "freeswitch"
    elif raw.get("type") != "asterisk":
        _problem(f"{where}.type: must be 'asterisk' or 'freeswitch', got {raw.get('type')!r}")
    secret = _take(raw, where, "secret", str, "")
    secret_file = _take(raw, where, "secret_file", str, "")
    env_key = f"DIALER_{name.upper().replace('-', '_')}_SECRET"
    if env.get(env_key):
        secret = env[env_key]
    elif secret_file and need_secret:
        try:
            secret = Path(secret_file).read_text().strip()
        except OSError as exc:
            _problem(f"{where}.secret_file: cannot read {secret_file}: {exc.strerror}")
    elif secret_file:
        secret = ""  # only the daemon reads it
    if not secret and not secret_file and need_secret:
        _problem(f"{where}: no secret; set secret_file, secret, or the environment variable {env_key}")
    default_port = 5038 if kind == "asterisk" else 8021
    port = _take(raw, where, "port", int, default_port)
    if not 0 < port < 65536:
        _problem(f"{where}.port: {port} is not a TCP port")
    max_lines = _take(raw, where, "max_lines", int, 100)
    if max_lines < 1:
        _problem(f"{where}.max_lines: must be at least 1")
    sounds_dir = _take(raw, where, "sounds_dir", str, "")
    if sounds_dir and kind != "asterisk":
        _problem(
            f"{where}.sounds_dir: only for Asterisk (FreeSWITCH is asked over the Event Socket); remove it"
        )
    elif sounds_dir and not sounds_dir.startswith("/"):
        _problem(
            f"{where}.sounds_dir: {sounds_dir!r} must be an absolute path, e.g. /var/lib/asterisk/sounds/en"
        )
    group = _take(raw, where, "group", str, "")
    if group and group == name:
        _problem(f"{where}.group: {group!r} is this PBX's own name; give the group a name of its own")
    return PbxSettings(
        name=name,
        kind=kind,
        host=_take(raw, where, "host", str, "127.0.0.1"),
        port=port,
        username=_take(raw, where, "username", str, "dialer"),
        secret=secret,
        fastagi_bind=_take(raw, where, "fastagi_bind", str, "127.0.0.1"),
        fastagi_port=_take(raw, where, "fastagi_port", int, 4573),
        action_timeout_s=_take(raw, where, "action_timeout_s", float, 5.0),
        ping_interval_s=_take(raw, where, "ping_interval_s", float, 5.0),
        max_lines=max_lines,
        max_calls_per_second=_take(raw, where, "max_calls_per_second", float, 10.0),
        sounds_dir=sounds_dir,
        freeswitch=freeswitch,
        groups=(group,) if group else (),
    )


_URL_HELP = "use sqlite:////var/lib/dialer/dialer.db (absolute path) or postgresql://user@host/dbname"


def normalize_database_url(url: str, where: str, base: Path | None = None) -> str:
    """Both spellings of each backend, with the async driver added; a relative SQLite path is made
    absolute against ``base`` (the current folder for what a person typed), never left relative."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise SettingsError(f"{where}: {url!r} is not a database URL; {_URL_HELP}")
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        if not rest.startswith("/"):
            raise SettingsError(f"{where}: {url!r} has no path; {_URL_HELP}")
        path = rest[1:]
        if path in ("", ":memory:"):
            raise SettingsError(f"{where}: {url!r} names no file; {_URL_HELP}")
        file = Path(path).expanduser()
        if not file.is_absolute():
            if base is None:
                raise SettingsError(
                    f"{where}: {url!r} is a relative path, which would depend on the current folder; "
                    f"{_URL_HELP}"
                )
            file = (base / file).resolve()
        return f"sqlite+aiosqlite:///{file}"
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return f"postgresql+asyncpg://{rest}"
    raise SettingsError(f"{where}: database {scheme!r} is not supported; {_URL_HELP}")


def sqlite_path(url: str) -> Path | None:
    """The file of a (normalized) SQLite URL, None for PostgreSQL."""
    prefix = "sqlite+aiosqlite:///"
    return Path(url[len(prefix) :].split("?", 1)[0]) if url.startswith(prefix) else None


def parse(
    data: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    *,
    path: Path | None = None,
    need_secrets: bool = True,
    need_pbx: bool = False,
) -> Settings:
    """Build Settings from parsed TOML; raises SettingsError naming every bad key (``.problems``)."""
    env = os.environ if env is None else env
    with _collecting() as problems:
        settings = _parse(data, env, path, need_secrets)
        if need_pbx and not data.get("pbx"):
            _problem("no [pbx.<name>] table; the daemon needs one PBX")
    if problems:
        where = str(path) if path else "dialer.toml"
        if len(problems) == 1:
            raise SettingsError(f"{where}: {problems[0]}", tuple(problems))
        listed = "".join(f"\n  - {p}" for p in problems)
        raise SettingsError(f"{where}: {len(problems)} problems:{listed}", tuple(problems))
    return settings


def _parse(
    data: Mapping[str, Any], env: Mapping[str, str], path: Path | None, need_secrets: bool
) -> Settings:
    _check_keys(data, "dialer.toml", _TOP_KEYS)
    database = _section(data, "database")
    _check_keys(database, "database", {"url"})
    redis = _section(data, "redis")
    _check_keys(redis, "redis", {"url", "namespace"})
    node = _section(data, "node")
    _check_keys(node, "node", {"id", "lease_s"})
    pacing = _section(data, "pacing")
    _check_keys(pacing, "pacing", {"tick_s"})
    metrics = _section(data, "metrics")
    _check_keys(metrics, "metrics", {"bind", "port"})
    api = _section(data, "api")
    _check_keys(api, "api", {"bind", "port"})
    compliance = _section(data, "compliance")
    _check_keys(compliance, "compliance", {"profiles_file"})
    logging_ = _section(data, "logging")
    _check_keys(logging_, "logging", {"level", "format"})
    shutdown = _section(data, "shutdown")
    _check_keys(shutdown, "shutdown", {"drain_timeout_s"})
    recordings = _section(data, "recordings")
    _check_keys(recordings, "recordings", {"dir"})

    seller = _seller(_section(data, "seller"), path)

    pbx_tables = _section(data, "pbx")
    pbxs = []
    for name, raw in pbx_tables.items():
        if not isinstance(raw, Mapping):
            _problem(f"[pbx.{name}] must be a table")
            continue
        try:
            pbxs.append(_pbx(name, raw, env, need_secrets))
        except SettingsError as exc:  # a check that stops at its first problem
            _problem(str(exc))
    # Several [pbx.*] tables: the node drives them all (dialer.runtime.pbx_pool); a group must not
    # shadow a PBX's name, or a campaign naming it would be ambiguous.
    for clash in sorted({g for p in pbxs for g in p.groups} & {p.name for p in pbxs}):
        _problem(f"pbx: group {clash!r} is also the name of a [pbx.{clash}] table; rename one of them")

    database_url, source = DEFAULT_DATABASE_URL, "default"
    configured = _take(database, "database", "url", str, "")
    try:
        if configured:
            base = path.parent if path is not None else None
            database_url, source = normalize_database_url(configured, "database.url", base), f"{path}"
        elif env.get(ENV_DATABASE):
            database_url = normalize_database_url(env[ENV_DATABASE], f"${ENV_DATABASE}", Path.cwd())
            source = f"${ENV_DATABASE}"
    except SettingsError as exc:
        _problem(str(exc))
    redis_url = _take(redis, "redis", "url", str, "") or env.get(ENV_REDIS) or None
    namespace = _take(redis, "redis", "namespace", str, "") or env.get(ENV_REDIS_NAMESPACE) or "dialer:"
    tick_s = _take(pacing, "pacing", "tick_s", float, 0.25)
    if not 0.05 <= tick_s <= 5.0:
        _problem(f"pacing.tick_s: {tick_s} is outside 0.05..5 seconds")
    level = _take(logging_, "logging", "level", str, "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        _problem(f"logging.level: {level!r} is not one of DEBUG, INFO, WARNING, ERROR")
        level = "INFO"
    log_format = _take(logging_, "logging", "format", str, "text")
    if log_format not in ("text", "json"):
        _problem(f"logging.format: {log_format!r} is not one of text, json")
        log_format = "text"
    profiles_text = _take(compliance, "compliance", "profiles_file", str, "")
    profiles: Path | None
    if profiles_text:
        profiles = Path(profiles_text)
        if not profiles.is_absolute() and path is not None:
            profiles = path.parent / profiles
        if not profiles.is_file():
            _problem(
                f"compliance.profiles_file: {profiles} does not exist; create it from "
                f"config/compliance/profiles.toml, or remove the key to use the built-in profiles"
            )
            profiles = None
    else:
        beside = (path.parent if path is not None else CONFIG_DIR) / PROFILES_NAME
        profiles = beside if beside.is_file() else None
    notify = None
    if "notify" in data:
        notify = parse_notify(_section(data, "notify"), env, _problem, need_secrets=need_secrets)
    lease_s = _take(node, "node", "lease_s", float, 10.0)
    if not 1.0 <= lease_s <= 300.0:
        _problem(f"node.lease_s: {lease_s} is outside 1..300 seconds")
    return Settings(
        lease_s=lease_s,
        database_url=database_url,
        redis_url=redis_url,
        node_id=_take(node, "node", "id", str, "node-1"),
        pbxs=tuple(pbxs),
        tick_s=tick_s,
        metrics_bind=_take(metrics, "metrics", "bind", str, "127.0.0.1"),
        metrics_port=_take(metrics, "metrics", "port", int, 9108),
        api_bind=_take(api, "api", "bind", str, "127.0.0.1"),
        api_port=_take(api, "api", "port", int, 8080),
        profiles_file=profiles,
        log_level=level,
        drain_timeout_s=_take(shutdown, "shutdown", "drain_timeout_s", float, 120.0),
        redis_namespace=namespace,
        number_hash_key=env.get(ENV_HASH_KEY) or None,
        config_path=path,
        database_source=source,
        notify=notify,
        seller=seller,
        log_format=log_format,
        recordings_dir=Path(_take(recordings, "recordings", "dir", str, "/var/spool/asterisk/monitor")),
    )


def _seller(raw: Mapping[str, Any], path: Path | None) -> SellerSettings:
    _check_keys(raw, "seller", {"name", "address", "email", "phone", "timezone", "confirmation_template"})
    zone = _take(raw, "seller", "timezone", str, "Europe/Paris")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        _problem(f"seller.timezone: {zone!r} is not a known time zone; use an IANA name like Europe/Paris")
        zone = "Europe/Paris"
    template_text = _take(raw, "seller", "confirmation_template", str, "")
    template: Path | None = None
    if template_text:
        template = Path(template_text)
        if not template.is_absolute() and path is not None:
            template = path.parent / template
        if not template.is_file():
            _problem(
                f"seller.confirmation_template: {template} does not exist; copy "
                "dialer/sales/templates/confirmation.toml there, or remove the key to use it as shipped"
            )
            template = None
    return SellerSettings(
        name=_take(raw, "seller", "name", str, ""),
        address=_take(raw, "seller", "address", str, ""),
        email=_take(raw, "seller", "email", str, ""),
        phone=_take(raw, "seller", "phone", str, ""),
        timezone=zone,
        confirmation_template=template,
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(
            f"{path}: no such file; copy config/dialer.toml there (or pass --config PATH)"
        ) from None
    except IsADirectoryError:
        raise SettingsError(
            f"{path} is a folder; give the settings file itself, e.g. --config {path / 'dialer.toml'}"
        ) from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read it ({exc.strerror}); check its permissions") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None


def config_path(explicit: Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The settings file every command reads: --config, else $DIALER_CONFIG, else the system file
    if it exists, else none (the defaults apply)."""
    env = os.environ if env is None else env
    if explicit is not None:
        return explicit
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG])
    return DEFAULT_PATH if DEFAULT_PATH.exists() else None


def resolve(
    config: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    profiles: tuple[Path, ...] | None = None,
    need_secrets: bool = False,
) -> Settings:
    """The settings of one command: the file (see ``config_path``), then the command's own options."""
    env = os.environ if env is None else env
    path = config_path(config, env)
    settings = parse(_read(path), env, path=path, need_secrets=need_secrets) if path else parse({}, env)
    changes: dict[str, Any] = {}
    if database_url:
        changes["database_url"] = normalize_database_url(database_url, "--db", Path.cwd())
        changes["database_source"] = "--db"
    if redis_url:
        changes["redis_url"] = redis_url
    if profiles is not None:
        missing = [str(p) for p in profiles if not p.is_file()]
        if missing:
            raise SettingsError(f"--profiles: no such file {', '.join(missing)}")
        changes["profiles_file"] = profiles[-1] if profiles else None
    return replace(settings, **changes) if changes else settings


def load(path: Path = DEFAULT_PATH, env: Mapping[str, str] | None = None) -> Settings:
    """The daemon's settings: the file must exist and configure a PBX; secrets are read."""
    return parse(_read(path), env, path=path, need_secrets=True, need_pbx=True)
