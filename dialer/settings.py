"""The daemon's settings: one TOML file (``/etc/dialer/dialer.toml``) read into one object.

Validated once at start-up.  A bad or unknown key stops the daemon with a
message that names the key and says what is expected, so a typo never turns
into a silently ignored setting.  Secrets may come from a file
(``secret_file``) or the environment (``DIALER_<PBX>_SECRET``) rather than the
TOML itself.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DEFAULT_PATH = Path("/etc/dialer/dialer.toml")

PbxKind = Literal["asterisk", "freeswitch"]


class SettingsError(ValueError):
    """The configuration cannot be used; the message names the key and the fix."""


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


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///var/lib/dialer/dialer.db"
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
}


def _take(section: Mapping[str, Any], where: str, key: str, kind: type, default: Any) -> Any:
    if key not in section:
        return default
    value = section[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SettingsError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def _check_keys(section: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise SettingsError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, Mapping):
        raise SettingsError(f"[{name}] must be a table")
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
}


def _pbx(name: str, raw: Mapping[str, Any], env: Mapping[str, str]) -> PbxSettings:
    where = f"pbx.{name}"
    _check_keys(raw, where, _PBX_KEYS)
    kind = raw.get("type")
    if kind not in ("asterisk", "freeswitch"):
        raise SettingsError(f"{where}.type: must be 'asterisk' or 'freeswitch', got {kind!r}")
    secret = _take(raw, where, "secret", str, "")
    secret_file = _take(raw, where, "secret_file", str, "")
    env_key = f"DIALER_{name.upper().replace('-', '_')}_SECRET"
    if env.get(env_key):
        secret = env[env_key]
    elif secret_file:
        try:
            secret = Path(secret_file).read_text().strip()
        except OSError as exc:
            raise SettingsError(f"{where}.secret_file: cannot read {secret_file}: {exc.strerror}") from exc
    if not secret:
        raise SettingsError(
            f"{where}: no secret; set secret_file, secret, or the environment variable {env_key}"
        )
    default_port = 5038 if kind == "asterisk" else 8021
    port = _take(raw, where, "port", int, default_port)
    if not 0 < port < 65536:
        raise SettingsError(f"{where}.port: {port} is not a TCP port")
    max_lines = _take(raw, where, "max_lines", int, 100)
    if max_lines < 1:
        raise SettingsError(f"{where}.max_lines: must be at least 1")
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
    )


def parse(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from parsed TOML; raises SettingsError naming the bad key."""
    env = os.environ if env is None else env
    _check_keys(data, "dialer.toml", _TOP_KEYS)
    database = _section(data, "database")
    _check_keys(database, "database", {"url"})
    redis = _section(data, "redis")
    _check_keys(redis, "redis", {"url"})
    node = _section(data, "node")
    _check_keys(node, "node", {"id"})
    pacing = _section(data, "pacing")
    _check_keys(pacing, "pacing", {"tick_s"})
    metrics = _section(data, "metrics")
    _check_keys(metrics, "metrics", {"bind", "port"})
    api = _section(data, "api")
    _check_keys(api, "api", {"bind", "port"})
    compliance = _section(data, "compliance")
    _check_keys(compliance, "compliance", {"profiles_file"})
    logging_ = _section(data, "logging")
    _check_keys(logging_, "logging", {"level"})
    shutdown = _section(data, "shutdown")
    _check_keys(shutdown, "shutdown", {"drain_timeout_s"})

    pbx_tables = _section(data, "pbx")
    pbxs = []
    for name, raw in pbx_tables.items():
        if not isinstance(raw, Mapping):
            raise SettingsError(f"[pbx.{name}] must be a table")
        pbxs.append(_pbx(name, raw, env))

    database_url = env.get("DIALER_DATABASE_URL") or _take(
        database, "database", "url", str, Settings.database_url
    )
    if not database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise SettingsError(
            "database.url: use sqlite+aiosqlite:///path/to/dialer.db or postgresql+asyncpg://user@host/db"
        )
    redis_url = env.get("DIALER_REDIS_URL") or _take(redis, "redis", "url", str, "") or None
    tick_s = _take(pacing, "pacing", "tick_s", float, 0.25)
    if not 0.05 <= tick_s <= 5.0:
        raise SettingsError(f"pacing.tick_s: {tick_s} is outside 0.05..5 seconds")
    level = _take(logging_, "logging", "level", str, "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"logging.level: {level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    profiles = _take(compliance, "compliance", "profiles_file", str, "")
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        node_id=_take(node, "node", "id", str, "node-1"),
        pbxs=tuple(pbxs),
        tick_s=tick_s,
        metrics_bind=_take(metrics, "metrics", "bind", str, "127.0.0.1"),
        metrics_port=_take(metrics, "metrics", "port", int, 9108),
        api_bind=_take(api, "api", "bind", str, "127.0.0.1"),
        api_port=_take(api, "api", "port", int, 8080),
        profiles_file=Path(profiles) if profiles else None,
        log_level=level,
        drain_timeout_s=_take(shutdown, "shutdown", "drain_timeout_s", float, 120.0),
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise SettingsError(
            f"{path}: no such file; copy config/dialer.toml there (or pass --config PATH)"
        ) from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from exc


def load_database_url(path: Path, env: Mapping[str, str] | None = None) -> str:
    """Only the database URL of a settings file (``dialer migrate --config``): no PBX secret needed."""
    env = os.environ if env is None else env
    database = _section(_read(path), "database")
    _check_keys(database, "database", {"url"})
    url: str = env.get("DIALER_DATABASE_URL") or _take(
        database, "database", "url", str, Settings.database_url
    )
    return url


def load(path: Path = DEFAULT_PATH, env: Mapping[str, str] | None = None) -> Settings:
    settings = parse(_read(path), env)
    if not settings.pbxs:
        raise SettingsError(f"{path}: no [pbx.<name>] table; the daemon needs at least one PBX")
    return settings
