"""ESL throughput: how many FreeSWITCH events per second one core parses and tracks.

The stream is the recorded ``burst_of_twenty`` session (real 3-10 KB channel
events) repeated with renamed uuids, so every copy is 20 new calls for the
tracker.  Measured: ``EslParser.feed`` in 64 KiB reads plus
``FreeSwitchCallTracker.feed`` for every frame, as the adapter's reader does.

    .venv/bin/python bench/esl_throughput.py [--quick] [--copies N]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telephony.freeswitch.protocol import EslParser
from telephony.freeswitch.tracker import FreeSwitchCallTracker

CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "freeswitch-transcripts"
_UUID = re.compile(r"fs-burst-(\d+)")
_ORIGINATE = re.compile(r"^bgapi originate \{origination_uuid=([^,}]+)[^}]*\}.*\nJob-UUID: (\S+)\n", re.S)


def _rename(text: str, copy: int) -> str:
    return _UUID.sub(lambda m: f"c{copy}-call-{m.group(1)}", text)


def _reframe(raw: str, copy: int) -> bytes:
    """One recorded frame with its uuids renamed and both Content-Lengths recomputed."""
    head, _, body = raw.partition("\n\n")
    if not body:
        return raw.encode()
    body = _rename(body, copy)
    block, sep, job_body = body.partition("\n\n")
    if job_body:
        block = re.sub(r"\nContent-Length: \d+", f"\nContent-Length: {len(job_body.encode())}", block)
        body = block + sep + job_body
    data = body.encode()
    head = re.sub(r"Content-Length: \d+", f"Content-Length: {len(data)}", head)
    return head.encode() + b"\n\n" + data


def build(copies: int, captures: Path) -> tuple[bytes, list[tuple[str, str]], int]:
    """(stream, registrations (uuid, job), event frame count)."""
    capture = json.loads((captures / "burst_of_twenty.json").read_text())
    frames = [raw for _, raw in capture["received"] if "Content-Type: text/event-plain" in raw]
    originates = [_ORIGINATE.match(s) for _, s in capture["sent"]]
    parts: list[bytes] = []
    regs: list[tuple[str, str]] = []
    for copy in range(copies):
        regs += [(_rename(m.group(1), copy), _rename(m.group(2), copy)) for m in originates if m]
        parts += [_reframe(raw, copy) for raw in frames]
    return b"".join(parts), regs, len(frames) * copies


def run(
    stream: bytes, regs: list[tuple[str, str]], chunk: int = 64 * 1024
) -> tuple[float, int, dict[str, int]]:
    tracker = FreeSwitchCallTracker()
    for uuid, job in regs:
        tracker.register_originate(uuid, job, 0.0)
    parser = EslParser()
    frames = 0
    start = time.perf_counter()
    for i in range(0, len(stream), chunk):
        for frame in parser.feed(stream[i : i + chunk]):
            frames += 1
            tracker.feed(frame, 0.0)
    elapsed = time.perf_counter() - start
    labels: dict[str, int] = {}
    for uuid, _ in regs:
        label = tracker.outcome_label(uuid) or "open"
        labels[label] = labels.get(label, 0) + 1
    if parser.error_count:
        raise SystemExit(f"parser errors: {parser.errors[:3]}")
    return elapsed, frames, labels


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller stream, well under a minute")
    ap.add_argument(
        "--copies", type=int, default=None, help="copies of the 20-call burst (default 200, quick 20)"
    )
    ap.add_argument("--captures", type=Path, default=CAPTURES)
    args = ap.parse_args()
    copies = args.copies or (20 if args.quick else 200)
    stream, regs, events = build(copies, args.captures)
    best = float("inf")
    for _ in range(3):
        elapsed, frames, labels = run(stream, regs)
        best = min(best, elapsed)
    assert frames == events, (frames, events)
    if labels.get("open"):
        raise SystemExit(f"{labels['open']} calls have no outcome: the stream or the tracker is broken")
    mb = len(stream) / 1e6
    print(f"stream: {copies} x burst_of_twenty, {len(regs)} calls, {events} events, {mb:.1f} MB")
    print(f"outcomes: {dict(sorted(labels.items()))}")
    print(f"best of 3: {best:.3f} s, {events / best:,.0f} events/s, {mb / best:.0f} MB/s")
    print(
        f"RESULT bench=esl_throughput events={events} calls={len(regs)} parse_track_eps={events / best:.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
