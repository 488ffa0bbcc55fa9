"""Loading the recorded PBX sessions in ../shared (Asterisk AMI/FastAGI, FreeSWITCH ESL)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import ASTERISK_CAPTURES, FREESWITCH_CAPTURES


@dataclass(frozen=True)
class Capture:
    scenario: str
    path: Path
    sent: list[tuple[float, str]]
    received: list[tuple[float, str]]
    raw: dict[str, Any]


def _load(path: Path) -> Capture:
    data = json.loads(path.read_text())
    return Capture(
        scenario=path.stem,
        path=path,
        sent=[(float(t), s) for t, s in data.get("sent", [])],
        received=[(float(t), r) for t, r in data.get("received", [])],
        raw=data,
    )


def asterisk_capture_paths() -> list[Path]:
    """Every AMI session file (not expected.json, not the FastAGI files)."""
    return sorted(
        p
        for p in ASTERISK_CAPTURES.glob("*.json")
        if p.stem != "expected" and not p.stem.startswith("fastagi_sessions")
    )


def asterisk_fastagi_paths() -> list[Path]:
    return sorted(ASTERISK_CAPTURES.glob("fastagi_sessions*.json"))


def freeswitch_capture_paths() -> list[Path]:
    return sorted(p for p in FREESWITCH_CAPTURES.glob("*.json") if p.stem != "expected")


def load_asterisk(name: str) -> Capture:
    return _load(ASTERISK_CAPTURES / f"{name}.json")


def load_freeswitch(name: str) -> Capture:
    return _load(FREESWITCH_CAPTURES / f"{name}.json")


def load(path: Path) -> Capture:
    return _load(path)


def asterisk_expected() -> dict[str, dict[str, str]]:
    data = json.loads((ASTERISK_CAPTURES / "expected.json").read_text())
    result: dict[str, dict[str, str]] = data["outcomes_by_action_id"]
    return result


def freeswitch_expected() -> dict[str, dict[str, str]]:
    data = json.loads((FREESWITCH_CAPTURES / "expected.json").read_text())
    result: dict[str, dict[str, str]] = data["outcomes_by_origination_uuid"]
    return result


def asterisk_stream(capture: Capture) -> bytes:
    """The received side back as the byte stream Asterisk wrote."""
    parts = []
    for _, raw in capture.received:
        parts.append(raw + ("\r\n" if raw.startswith("Asterisk Call Manager/") else "\r\n\r\n"))
    return "".join(parts).encode()
