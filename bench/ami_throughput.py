"""AMI throughput: how many Asterisk events per second one core parses and tracks.

The stream is built from the recorded sessions (``burst_of_twenty``: twenty
interleaved Local calls, plus the single SIP calls) repeated with renamed ids,
so every copy is a set of new calls for the tracker.  Measured in one run on
the same bytes:

- parse+track: ``AmiParser.feed`` in 64 KiB reads plus ``CallTracker.feed`` for
  every message, as the AMI client's reader and the adapter do;
- bare: the least a parser can do, ``split(b"\\r\\n\\r\\n")`` then each line
  split on ``": "`` into a dict; no repeated headers, no errors, no tracking.

Targets: >= 50,000 events/s parse+track on one core and a ratio >= 0.33.

    .venv/bin/python bench/ami_throughput.py [--quick] [--events N]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telephony.asterisk.protocol import AmiParser
from telephony.asterisk.tracker import CallTracker

CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "asterisk-transcripts"
SESSIONS = [
    "burst_of_twenty",
    "sip_answered_person",
    "sip_answering_machine",
    "sip_busy",
    "sip_congestion",
    "sip_invalid_number",
    "sip_no_answer",
]
_UNIQUEID = re.compile(r"(?<![\w.-])(\d{10}\.\d+)(?![\w.])")
_CHUNK = 64 * 1024

Registration = tuple[str, str, str | None]


def _header(block: str, name: str) -> str | None:
    for line in block.split("\r\n"):
        if line.startswith(name + ": "):
            return line[len(name) + 2 :]
    return None


def _template(name: str) -> tuple[list[str], list[Registration], re.Pattern[str]]:
    data = json.loads((CAPTURES / f"{name}.json").read_text())
    blocks = [raw for _, raw in data["received"] if raw.startswith("Event: ")]
    regs: list[Registration] = []
    ids: set[str] = set()
    for _, sent in data["sent"]:
        if sent.startswith("Action: Originate"):
            action = _header(sent, "ActionID")
            channel = _header(sent, "ChannelId")
            assert action is not None
            regs.append((action, action, channel))
            ids.update(i for i in (action, channel) if i)
    alternatives = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
    return blocks, regs, re.compile(rf"(?<![\w-])({alternatives})(?![\w-])")


def build(target_events: int) -> tuple[bytes, list[Registration], int, dict[str, str]]:
    """(stream, registrations (attempt, action id, channel id), message count, expected labels)."""
    templates = [_template(name) for name in SESSIONS]
    recorded = json.loads((CAPTURES / "expected.json").read_text())["outcomes_by_action_id"]
    template_expected = {a: label for name in SESSIONS for a, label in recorded[name].items()}
    expected: dict[str, str] = {}
    per_copy = sum(len(blocks) for blocks, _, _ in templates)
    copies = max(1, -(-target_events // per_copy))
    parts: list[str] = ["Asterisk Call Manager/11.0.0\r\n"]
    regs: list[Registration] = []
    for copy in range(copies):
        prefix = f"c{copy}-"

        def rename(m: re.Match[str], prefix: str = prefix) -> str:
            return prefix + m.group(1)

        for blocks, template_regs, ids in templates:
            regs += [(prefix + a, prefix + b, None if c is None else prefix + c) for a, b, c in template_regs]
            expected.update((prefix + a, template_expected[a]) for a, _, _ in template_regs)
            for block in blocks:
                parts.append(_UNIQUEID.sub(rename, ids.sub(rename, block)) + "\r\n\r\n")
    return "".join(parts).encode(), regs, per_copy * copies, expected


def parse_and_track(stream: bytes, regs: list[Registration]) -> tuple[float, int, int, CallTracker]:
    tracker = CallTracker()
    for attempt, action, channel in regs:
        tracker.register_originate(attempt, action, channel, 0.0)
    parser = AmiParser()
    feed = tracker.feed
    messages = 0
    events = 0
    start = time.perf_counter()
    for i in range(0, len(stream), _CHUNK):
        batch = parser.feed(stream[i : i + _CHUNK])
        messages += len(batch)
        for msg in batch:
            events += len(feed(msg, 0.0))
    elapsed = time.perf_counter() - start
    assert parser.error_count == 0, parser.errors[:3]
    return elapsed, messages, events, tracker


def bare(stream: bytes) -> tuple[float, int]:
    start = time.perf_counter()
    messages = 0
    for block in stream.split(b"\r\n\r\n"):
        if not block:
            continue
        msg = {}
        for line in block.decode().split("\r\n"):
            key, sep, value = line.partition(": ")
            if sep:
                msg[key] = value
        messages += 1
    return time.perf_counter() - start, messages


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="about 30k events, best of 3 (well under a minute)")
    ap.add_argument("--events", type=int, default=None, help="events in the stream (default 200000)")
    args = ap.parse_args(argv)
    target = args.events or (30_000 if args.quick else 200_000)
    rounds = 3
    stream, regs, n, expected = build(target)
    print(f"stream: {n} events, {len(regs)} calls, {len(stream) / 1e6:.1f} MB")

    best_track = best_bare = float("inf")
    outcomes: dict[str, int] = {}
    for _ in range(rounds):
        elapsed, messages, events, tracker = parse_and_track(stream, regs)
        assert messages == n, (messages, n)
        best_track = min(best_track, elapsed)
        b_elapsed, b_messages = bare(stream)
        assert b_messages == n, (b_messages, n)  # the banner line rides on the first block
        best_bare = min(best_bare, b_elapsed)
    wrong = 0
    for attempt, _, _ in regs:
        label = tracker.outcome_label(attempt)
        outcomes[label] = outcomes.get(label, 0) + 1
        wrong += label != expected[attempt]
    if wrong:
        print(f"ERROR: {wrong} calls got an outcome other than the recorded one")
        return 1

    track_eps = n / best_track
    bare_eps = n / best_bare
    ratio = track_eps / bare_eps
    print(f"{'measure':<28}{'seconds':>10}{'events/s':>14}")
    print(f"{'AmiParser + CallTracker':<28}{best_track:>10.3f}{track_eps:>14,.0f}")
    print(f"{'bare split (baseline)':<28}{best_bare:>10.3f}{bare_eps:>14,.0f}")
    print(f"normalized events emitted per round: {events}; outcomes: {dict(sorted(outcomes.items()))}")
    ok = track_eps >= 50_000 and ratio >= 0.33
    print(f"targets (>= 50,000 events/s, ratio >= 0.33): {'met' if ok else 'NOT met'}")
    print(
        f"RESULT bench=ami_throughput events={n} parse_track_eps={track_eps:.0f} "
        f"bare_eps={bare_eps:.0f} ratio={ratio:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
