"""Sans-IO codec for the Asterisk Manager Interface (AMI).

Bytes in, messages out; messages in, bytes out.  No sockets here, so the
client, the call tracker, the simulator and the benchmarks all share one
parser and every rule is testable without a network.

An AMI message is a block of ``Key: Value`` lines ended by CRLF, closed by an
empty line.  The first thing a server sends is a banner line
(``Asterisk Call Manager/11.0.0``) with no blank line after it.  Keys may
repeat (``Variable``, ``ChanVariable``): the first value is the dict value, all
values are kept in order in ``AmiMessage.pairs`` only when a key repeats.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

BANNER_PREFIX = "Asterisk Call Manager/"
_EOM = b"\r\n\r\n"


class AmiProtocolError(ValueError):
    """A message that is not AMI.  Counted and logged; the stream goes on."""


class AmiMessage(dict[str, str]):
    """One AMI message: header name -> first value, plus repeated headers."""

    __slots__ = ("repeated",)

    def __init__(self, *args: object, **kwargs: str) -> None:
        super().__init__(*args, **kwargs)
        self.repeated: dict[str, list[str]] | None = None

    def getall(self, key: str) -> list[str]:
        """Every value of ``key`` in order (``Variable`` lines of an action)."""
        if self.repeated is not None and key in self.repeated:
            return list(self.repeated[key])
        value = self.get(key)
        return [] if value is None else [value]

    @property
    def event(self) -> str | None:
        return self.get("Event")

    @property
    def response(self) -> str | None:
        return self.get("Response")

    @property
    def action(self) -> str | None:
        return self.get("Action")


def parse_block(text: str) -> AmiMessage:
    """Parse one message block (no trailing blank line) into an AmiMessage.

    Raises AmiProtocolError for a line that has no ``:`` separator.
    """
    msg = AmiMessage()
    for line in text.split("\r\n"):
        # Fast path: Asterisk writes "Key: value".  Other shapes ("Key:value",
        # "Key:", a colon before the first ": ") take the general rule below.
        key, sep, value = line.partition(": ")
        if not sep or ":" in key:
            key, sep, value = line.partition(":")
            if not sep:
                if not line:
                    continue
                raise AmiProtocolError(f"AMI line without ':' separator: {line[:60]!r}")
            if value[:1] == " ":
                value = value[1:]
        if key in msg:
            if msg.repeated is None:
                msg.repeated = {}
            msg.repeated.setdefault(key, [msg[key]]).append(value)
        else:
            msg[key] = value
    return msg


class AmiParser:
    """Incremental AMI parser: ``feed(bytes)`` returns the complete messages.

    Malformed blocks are not raised: they are kept in ``errors`` (a bounded
    list of short descriptions) and counted in ``error_count`` so the
    connection survives and somebody can see what was dropped.
    """

    __slots__ = ("_buf", "_want_banner", "banner", "error_count", "errors")

    MAX_ERRORS_KEPT = 100
    MAX_BUFFER = 4 * 1024 * 1024  # a peer that never ends a message is cut off

    def __init__(self, expect_banner: bool = True) -> None:
        self._buf = b""
        self.banner: str | None = None
        self.error_count = 0
        self.errors: list[str] = []
        self._want_banner = expect_banner

    def feed(self, data: bytes) -> list[AmiMessage]:
        buf = self._buf + data if self._buf else data
        if self._want_banner:
            nl = buf.find(b"\r\n")
            if nl < 0:
                self._buf = buf
                return []
            first = buf[:nl].decode("utf-8", "replace")
            if first.startswith(BANNER_PREFIX):
                self.banner = first
                buf = buf[nl + 2 :]
            self._want_banner = False
        out: list[AmiMessage] = []
        end = buf.rfind(_EOM)
        if end < 0:
            rest = buf
        else:
            rest = buf[end + 4 :]
            # One decode and one split for every complete message of this read:
            # the end marker is ASCII, so no UTF-8 sequence can straddle it.
            for block in buf[:end].decode("utf-8", "replace").split("\r\n\r\n"):
                if not block or block.isspace():
                    continue
                if block[0] in "\r\n":
                    block = block.lstrip("\r\n")
                try:
                    out.append(parse_block(block))
                except AmiProtocolError as exc:
                    self._record_error(str(exc))
        if len(rest) > self.MAX_BUFFER:
            self._record_error(f"AMI message over {self.MAX_BUFFER} bytes without an end; dropped")
            rest = b""
        self._buf = rest
        return out

    def _record_error(self, what: str) -> None:
        self.error_count += 1
        if len(self.errors) >= self.MAX_ERRORS_KEPT:
            del self.errors[0]
        self.errors.append(what)


Header = tuple[str, str]


def encode(fields: Mapping[str, str] | Iterable[Header]) -> bytes:
    """Encode an action or event.  Pass pairs to repeat a key (``Variable``).

    A value or key holding CR or LF would let a caller inject extra headers
    or whole actions into the stream, so it is refused.
    """
    items: Iterable[Header] = fields.items() if isinstance(fields, Mapping) else fields
    parts: list[str] = []
    for key, value in items:
        if "\r" in key or "\n" in key or ":" in key or "\r" in value or "\n" in value:
            raise ValueError(f"AMI header {key!r} holds a line break or colon; refusing to send")
        parts.append(f"{key}: {value}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")


def split_capture_block(raw: str) -> AmiMessage | None:
    """Parse one entry of a recorded AMI session (a block without its blank line).

    Returns None for the banner line, which is not a message.
    """
    if raw.startswith(BANNER_PREFIX):
        return None
    return parse_block(raw)
