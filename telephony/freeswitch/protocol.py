"""Sans-IO codec for the FreeSWITCH Event Socket (ESL, inbound mode).

Bytes in, frames out; commands in, bytes out.  No sockets here, so the
client, the call tracker, the simulator and the benchmark share one parser
and every rule is testable without a network.

An ESL frame is a block of ``Name: value`` lines ended by LF (not CRLF),
closed by an empty line, followed by ``Content-Length`` bytes of body when
that header is present.  A ``text/event-plain`` body is itself a header block
with URL-encoded values; a BACKGROUND_JOB event adds a blank line and the
job's result body, sized by an inner ``Content-Length``.

Channel events carry every channel variable (3-10 KB per frame), while the
dialer needs a handful of headers.  ``EslEvent`` therefore decodes lazily:
``get(name)`` searches the raw header block for that one header, and the full
dict is only built when somebody asks for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote

_EOH = b"\n\n"
# A larger body is not an ESL frame (the biggest channel event is ~10 KB);
# refusing it keeps one corrupt length from swallowing the whole stream.
MAX_BODY = 4 * 1024 * 1024
# A header block with no blank line after this many bytes is garbage.
MAX_HEADER_BLOCK = 64 * 1024
MAX_ERRORS_KEPT = 100

CT_AUTH_REQUEST = "auth/request"
CT_COMMAND_REPLY = "command/reply"
CT_API_RESPONSE = "api/response"
CT_EVENT_PLAIN = "text/event-plain"
CT_DISCONNECT = "text/disconnect-notice"
CT_RUDE_REJECTION = "text/rude-rejection"


class EslProtocolError(ValueError):
    """Bytes that are not ESL.  Counted and logged; the stream goes on."""


class EslCommandError(ValueError):
    """A command argument that would change the command (newline, bad character)."""


def _parse_header_block(text: str, *, decode: bool) -> dict[str, str]:
    """``Name: value`` lines -> dict; the first value of a repeated header wins.

    FreeSWITCH repeats some headers with the same value (``Hangup-Cause`` in
    CHANNEL_HANGUP_COMPLETE, ``Unique-ID`` in avmd events): keeping the first
    is what its own ESL library does.
    """
    headers: dict[str, str] = {}
    for line in text.split("\n"):
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise EslProtocolError(f"ESL header line without ':' separator: {line[:60]!r}")
        if value[:1] == " ":
            value = value[1:]
        if value[-1:] == "\r":
            value = value[:-1]
        if decode and "%" in value:
            value = unquote(value)
        if name not in headers:
            headers[name] = value
    return headers


class EslEvent:
    """One ``text/event-plain`` event, decoded on demand.

    ``get`` finds a single header in the raw block (first occurrence, URL
    decoded) without splitting the 150 other lines; ``headers`` builds the
    whole dict once.  ``body`` is the BACKGROUND_JOB result (``+OK uuid`` /
    ``-ERR CAUSE``), empty for other events.
    """

    __slots__ = ("_body", "_cache", "_end", "_headers", "_text")

    def __init__(self, text: str) -> None:
        # Nothing is scanned here: a channel event is 3-10 KB and the tracker reads
        # three or four of its ~150 headers.
        self._text = text
        self._end = -2  # end of the header block: unknown yet
        self._cache: dict[str, str | None] = {}
        self._headers: dict[str, str] | None = None
        self._body: str | None = None

    def _block_end(self) -> int:
        """Index of the blank line that ends the header block (values never hold a newline)."""
        if self._end == -2:
            cut = self._text.find("\n\n")
            self._end = len(self._text) if cut < 0 else cut
        return self._end

    @property
    def body(self) -> str:
        if self._body is None:
            end = self._block_end()
            rest = self._text[end + 2 :]
            if rest:
                length = self.get("Content-Length")
                if length is not None and length.isdigit():
                    rest = rest[: int(length)]
            self._body = rest
        return self._body

    def get(self, name: str, default: str | None = None) -> str | None:
        cache = self._cache
        if name in cache:
            value = cache[name]
            return default if value is None else value
        text = self._text
        found: str | None = None
        key = name + ":"
        if text.startswith(key):
            start = 0
        else:
            start = text.find("\n" + key)
            # A match after the header block is in a job's body (``api`` output), not a header.
            if start >= 0 and text.find("\n\n", 0, start + 1) >= 0:
                start = -1
            if start >= 0:
                start += 1
        if start >= 0:
            start += len(key)
            end = text.find("\n", start)
            raw = text[start:] if end < 0 else text[start:end]
            if raw[:1] == " ":
                raw = raw[1:]
            if raw[-1:] == "\r":
                raw = raw[:-1]
            found = unquote(raw) if "%" in raw else raw
        cache[name] = found
        return default if found is None else found

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = _parse_header_block(self._text[: self._block_end()], decode=True)
        return self._headers

    @property
    def name(self) -> str:
        return self.get("Event-Name") or ""

    @property
    def subclass(self) -> str:
        return self.get("Event-Subclass") or ""

    @property
    def unique_id(self) -> str | None:
        return self.get("Unique-ID")

    def __repr__(self) -> str:
        return f"EslEvent({self.name!r}, {self.subclass!r}, uid={self.unique_id!r})"


@dataclass(slots=True)
class EslFrame:
    """One ESL frame: the outer headers and the raw body."""

    headers: dict[str, str]
    body: bytes = b""
    _event: EslEvent | None = field(default=None, repr=False, compare=False)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def reply_text(self) -> str:
        """``Reply-Text`` of a command/reply, or the text of an api/response."""
        if self.content_type == CT_API_RESPONSE:
            return self.body.decode("utf-8", "replace")
        return self.headers.get("Reply-Text", "")

    @property
    def ok(self) -> bool:
        return self.reply_text.startswith("+OK")

    @property
    def is_event(self) -> bool:
        return self.content_type == CT_EVENT_PLAIN

    @property
    def event(self) -> EslEvent:
        """The event of a ``text/event-plain`` frame (decoded on first use)."""
        if self._event is None:
            if not self.is_event:
                raise EslProtocolError(f"frame of type {self.content_type!r} is not an event")
            self._event = EslEvent(self.body.decode("utf-8", "replace"))
        return self._event


class EslParser:
    """Incremental ESL parser: ``feed(bytes)`` returns the complete frames.

    A malformed frame (header line without ``:``, bad ``Content-Length``,
    runaway header block) is recorded in ``errors`` / ``error_count`` and
    skipped up to the next blank line; the frames after it still come out.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pending: dict[str, str] | None = None  # headers read, body awaited
        self._need = 0
        self.error_count = 0
        self.errors: list[str] = []  # the last MAX_ERRORS_KEPT, for logs and tests

    def _error(self, message: str) -> None:
        self.error_count += 1
        self.errors.append(message)
        if len(self.errors) > MAX_ERRORS_KEPT:
            del self.errors[0]

    def feed(self, data: bytes) -> list[EslFrame]:
        buf = self._buf
        buf += data
        frames: list[EslFrame] = []
        pos = 0
        size = len(buf)
        while True:
            if self._pending is not None:
                if size - pos < self._need:
                    break
                end = pos + self._need
                frames.append(EslFrame(self._pending, bytes(buf[pos:end])))
                self._pending = None
                pos = end
                continue
            # Blank lines between frames are noise, not frames.
            while pos < size and buf[pos] in (0x0A, 0x0D):
                pos += 1
            if pos >= size:
                break
            cut = buf.find(_EOH, pos)
            if cut < 0:
                if size - pos > MAX_HEADER_BLOCK:
                    self._error(f"header block longer than {MAX_HEADER_BLOCK} bytes without a blank line")
                    pos = size
                break
            block = bytes(buf[pos:cut])
            pos = cut + 2
            try:
                headers = _parse_header_block(block.decode("utf-8", "replace"), decode=False)
                length = headers.get("Content-Length")
                need = 0
                if length is not None:
                    if not length.strip().isdigit():
                        raise EslProtocolError(f"Content-Length is not a number: {length[:20]!r}")
                    need = int(length)
                    if need > MAX_BODY:
                        raise EslProtocolError(f"Content-Length {need} exceeds {MAX_BODY}")
                if "Content-Type" not in headers:
                    raise EslProtocolError(f"frame without Content-Type: {block[:60]!r}")
            except EslProtocolError as exc:
                self._error(str(exc))
                continue
            if need:
                self._pending = headers
                self._need = need
            else:
                frames.append(EslFrame(headers))
        if pos:
            del buf[:pos]
        return frames

    @property
    def buffered(self) -> int:
        """Bytes held that are not a whole frame yet."""
        return len(self._buf)


def iter_frames(data: bytes) -> Iterator[EslFrame]:
    """Parse a complete byte stream (tests, benchmarks)."""
    parser = EslParser()
    yield from parser.feed(data)


# ---------------------------------------------------------------------------
# Commands.  Every argument is checked: a newline would end the command and
# let the rest be read as a second command (e.g. ``api`` after a uuid taken
# from an outside source), so it is refused, never stripped.


def _check(value: str, what: str) -> str:
    if "\n" in value or "\r" in value:
        raise EslCommandError(f"{what} contains a line break; refused so it cannot inject an ESL command")
    if "\x00" in value:
        raise EslCommandError(f"{what} contains a NUL byte; refused")
    return value


def _check_token(value: str, what: str) -> str:
    """A single word (uuid, app name): no whitespace at all."""
    _check(value, what)
    if not value or any(c.isspace() for c in value):
        raise EslCommandError(f"{what} {value!r} must be one non-empty word")
    return value


def encode_auth(password: str) -> bytes:
    return f"auth {_check(password, 'password')}\n\n".encode()


def encode_event_subscription(events: Iterable[str]) -> bytes:
    names = [_check_token(e, "event name") for e in events]
    if not names:
        raise EslCommandError("event subscription needs at least one event name")
    return ("event plain " + " ".join(names) + "\n\n").encode()


def encode_api(command: str) -> bytes:
    return f"api {_check(command, 'api command')}\n\n".encode()


def encode_bgapi(command: str, job_uuid: str) -> bytes:
    job = _check_token(job_uuid, "Job-UUID")
    return f"bgapi {_check(command, 'bgapi command')}\nJob-UUID: {job}\n\n".encode()


def encode_sendmsg_execute(uuid: str, app: str, arg: str | None = None, *, event_lock: bool = False) -> bytes:
    """``sendmsg <uuid>`` with ``call-command: execute`` (runs a dialplan app on the channel).

    ``event-lock: true`` makes several messages to one channel run in order,
    each after the previous one finished (playback, then hangup).
    """
    lines = [
        f"sendmsg {_check_token(uuid, 'channel uuid')}",
        "call-command: execute",
        f"execute-app-name: {_check_token(app, 'application name')}",
    ]
    if arg is not None:
        lines.append(f"execute-app-arg: {_check(arg, 'application argument')}")
    if event_lock:
        lines.append("event-lock: true")
    return ("\n".join(lines) + "\n\n").encode()


def encode_exit() -> bytes:
    return b"exit\n\n"
