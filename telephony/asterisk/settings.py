"""Settings of one Asterisk PBX connection (AMI + FastAGI), validated once at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

MIN_RING_TIMEOUT_S = 15.0  # shorter rings hang up on people reaching for the phone (and regulators count it)


@dataclass(frozen=True, slots=True)
class AsteriskSettings:
    """Where the PBX is and how patient to be with it.

    ``fastagi_host``/``fastagi_port`` is where *we* listen; the dialplan's
    ``DIALER_FASTAGI`` global must point there.  The secret never appears in
    ``repr`` or in logs.
    """

    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "dialer"
    secret: str = field(default="", repr=False)
    fastagi_host: str = "127.0.0.1"
    fastagi_port: int = 4573
    action_timeout_s: float = 5.0  # every AMI action gets an answer within this, or ActionTimeout
    ping_interval_s: float = 5.0  # liveness: a Ping must get its Pong, an open socket is not enough
    ping_timeout_s: float = 3.0
    connect_timeout_s: float = 5.0
    reconnect_initial_s: float = 0.5  # backoff doubles from here ...
    reconnect_max_s: float = 30.0  # ... up to here, with jitter
    agi_command_timeout_s: float = 5.0
    # A safety net over the answer decision: the runtime answers within the campaign's own limit
    # (at most 2 s after the answer), so this must stay above it.
    decision_timeout_s: float = 5.0
    tracker_grace_s: float = 60.0  # forget a finished call whose last message never came
    event_queue_warn: int = 50_000  # events waiting for the handler: warn above this backlog
    # Where this Asterisk keeps the campaigns' sounds, when it runs on the dialer's host (e.g.
    # /var/lib/asterisk/sounds/en): the only way to check a message exists, as the manager user
    # may not run CLI commands.  Empty: another host, the check is left to the operator.
    sounds_dir: str = ""
    name: str = "asterisk"

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.host:
            problems.append("host is empty")
        for key in ("port", "fastagi_port"):
            value = getattr(self, key)
            if not 0 <= value <= 65535:
                problems.append(f"{key}={value} is not a TCP port")
        if not self.username:
            problems.append("username is empty (the manager.conf user)")
        if not self.secret:
            problems.append("secret is empty (the manager.conf user's secret)")
        for key in (
            "action_timeout_s",
            "ping_interval_s",
            "ping_timeout_s",
            "connect_timeout_s",
            "reconnect_initial_s",
            "reconnect_max_s",
            "agi_command_timeout_s",
            "decision_timeout_s",
            "tracker_grace_s",
        ):
            if getattr(self, key) <= 0:
                problems.append(f"{key}={getattr(self, key)} must be > 0")
        if self.reconnect_max_s < self.reconnect_initial_s:
            problems.append("reconnect_max_s must be >= reconnect_initial_s")
        if problems:
            raise ValueError("asterisk settings: " + "; ".join(problems))

    @classmethod
    def from_mapping(cls, values: Mapping[str, object], where: str = "[asterisk]") -> AsteriskSettings:
        """Build from a config table (TOML ``[asterisk]``), naming any bad key and what it should be."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(known)}")
        kwargs: dict[str, object] = {}
        for key, value in values.items():
            default = known[key].default
            if isinstance(default, bool) or isinstance(value, bool):
                raise ValueError(f"{where}: {key} must be a number or a string, not {value!r}")
            if isinstance(default, int) and not isinstance(default, bool):
                if not isinstance(value, int):
                    raise ValueError(f"{where}: {key} must be a whole number, got {value!r}")
            elif isinstance(default, float):
                if not isinstance(value, int | float):
                    raise ValueError(f"{where}: {key} must be a number of seconds, got {value!r}")
                value = float(value)
            elif not isinstance(value, str):
                raise ValueError(f"{where}: {key} must be a string, got {value!r}")
            kwargs[key] = value
        try:
            return cls(**kwargs)  # type: ignore[arg-type]
        except ValueError as exc:
            raise ValueError(str(exc).replace("asterisk settings", where, 1)) from None
