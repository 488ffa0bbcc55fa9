"""Short-lived signed links to a recording's audio, so an ``<audio>`` element plays without a bearer header.

A link names the call, the user it was made for and when it expires, signed
with this process's key (HMAC-SHA256).  Whoever holds the link hears the call
until it expires, as that user: the user's right to see the call is checked
again when the audio is served.  The key lives in the process: a link made by
one node plays on that node only, and a restart ends every link.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from dialer.service import Unauthorized
from dialer.service.accounts import Principal

LINK_TTL_S = 600.0
_KEY = secrets.token_bytes(32)


@dataclass(frozen=True, slots=True)
class LinkHolder:
    """Who a checked link was made for."""

    user_id: str
    role: str


def _signature(attempt_id: str, user_id: str, role: str, expires: int) -> str:
    message = f"{attempt_id}\n{user_id}\n{role}\n{expires}".encode()
    return hmac.new(_KEY, message, hashlib.sha256).hexdigest()


def signed_audio_url(
    attempt_id: str,
    who: Principal,
    *,
    download: bool = False,
    ttl_s: float = LINK_TTL_S,
    clock: Callable[[], float] = time.time,
) -> str:
    """The path of the call's audio (or its download), playable without a token for ``ttl_s``."""
    expires = int(clock() + ttl_s)
    query = urlencode(
        {
            "u": who.user_id,
            "r": who.role.value,
            "e": expires,
            "s": _signature(attempt_id, who.user_id, who.role.value, expires),
        }
    )
    return f"/api/recordings/{attempt_id}/{'download' if download else 'audio'}?{query}"


def check_link(
    attempt_id: str,
    user_id: str,
    role: str,
    expires: int,
    signature: str,
    clock: Callable[[], float] = time.time,
) -> LinkHolder:
    """The link's holder; Unauthorized when it was not made here for this call, or has expired."""
    good = _signature(attempt_id, user_id, role, expires)
    if not hmac.compare_digest(good.encode(), signature.encode("utf-8", "replace")):
        raise Unauthorized("this recording link is not valid: open the recording again from its page")
    if expires < clock():
        raise Unauthorized("this recording link has expired: open the recording again from its page")
    return LinkHolder(user_id, role)
