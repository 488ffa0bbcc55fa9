"""Before a campaign dials: are the sounds it plays on the PBX?

An abandoned person must hear the identification message (FR, UK and US law); a campaign
whose message Asterisk or FreeSWITCH cannot find plays silence and hangs up.  So a campaign
is not dialed when its PBX says a sound is missing.  Where the PBX cannot be asked (Asterisk
on another host: the manager user may not run CLI commands) the daemon says loudly, once per
campaign start, which file must be where.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from dialer.domain.campaign import AmdPolicy, CampaignSettings
from telephony.base import PbxError

log = logging.getLogger(__name__)

WHERE = (
    "Asterisk: <name>.wav in its sounds directory (e.g. /var/lib/asterisk/sounds/en/); "
    "FreeSWITCH: <name>.wav under its sound_prefix, or an absolute name (see README, "
    "'The identification message'; the shipped one is config/sounds/<lang>/dialer-identification.wav)"
)


@runtime_checkable
class SoundCheck(Protocol):
    """A PBX adapter that can tell whether it has a sound (AsteriskPbx, FreeSwitchPbx)."""

    async def has_sound(self, name: str) -> bool | None: ...


def sounds_of(campaign: CampaignSettings) -> list[tuple[str, str]]:
    """(what, name) of every sound the campaign may play."""
    sounds = [("identification message", campaign.identification_message)]
    if campaign.amd_policy is AmdPolicy.LEAVE_MESSAGE:
        sounds.append(("machine message", campaign.machine_message))
    return sounds


async def prompt_problem(pbx: object, campaign: CampaignSettings, name: str) -> str | None:
    """Why campaign ``name`` must not dial on ``pbx`` for want of a sound, or None.

    A sound the PBX cannot vouch for (it cannot be asked, or did not answer) is not a reason
    to refuse: it is logged as a WARNING naming the file and where it must be.
    """
    missing = []
    for what, sound in sounds_of(campaign):
        has: bool | None = None
        if isinstance(pbx, SoundCheck):
            try:
                has = await pbx.has_sound(sound)
            except PbxError as exc:
                log.warning("campaign %s: cannot ask the PBX for its %s %r: %s", name, what, sound, exc)
        if has is False:
            missing.append(f"{what} {sound!r}")
        elif has is None:
            log.warning(
                "campaign %s: CANNOT CHECK that the PBX has its %s %r; an abandoned person hears "
                "nothing if it is missing. Make sure it is there: %s",
                name,
                what,
                sound,
                WHERE,
            )
    if not missing:
        return None
    return f"the PBX has no {' and no '.join(missing)}: install it ({WHERE})"
