"""Settings of one Asterisk PBX connection (AMI + FastAGI), validated once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    decision_timeout_s: float = 2.0  # the answered customer waits on the line meanwhile
    tracker_grace_s: float = 60.0  # forget a finished call whose last message never came
    event_queue_warn: int = 50_000  # events waiting for the handler: warn above this backlog
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
