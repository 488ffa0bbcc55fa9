"""Compliance gate throughput and latency with a national-registry-sized DNC set loaded.

For each store (in-process numpy index, then Redis) the bench loads N do-not-call numbers (French
mobiles, as a Bloctel screening would give), records some contact history, then runs gate decisions
one after the other on a mix of listed and unlisted numbers, each through the full path: number
parsing, DNC lookup, registry freshness, history read, the rules, the audit (SQLite, flushed in
the background) and the metric.

    .venv/bin/python bench/gate.py            # 10,000,000 numbers
    .venv/bin/python bench/gate.py --quick    # 1,000,000 numbers, fewer decisions

Targets: p99 < 1 ms in-process, < 3 ms with Redis; the DNC set of 10 M numbers under 1 GB.
On a shared machine the Redis figure cannot beat one round trip, so the bench also times a bare
GET on its own connection, alternating with the decisions (same moments, same load), and gives
the gate's p99 as a multiple of it.  It counts, over the timed decisions, the Redis round trips
and commands the gate sent and the SQL statements it ran (the audit's batched inserts included).
Ends with one line per store:
RESULT bench=gate store=<inproc|redis> numbers=... decisions_per_s=... p50_ms=... p99_ms=... dnc_mb=...
  redis_rtt_per_decision=... redis_cmds_per_decision=... sql_per_decision=...
  [bare_get_p50_ms=... bare_get_p99_ms=... p99_vs_bare_get=...]   (Redis only)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

import numpy as np
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.typing import EncodableT
from sqlalchemy import Table, event, insert
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dialer.compliance.gate import ComplianceConfig, ComplianceGate, build_gate
from dialer.compliance.tables import COMPLIANCE_TABLES, DncRegistryImport
from dialer.domain.compliance import CallRequest, CampaignRules, ConsentRecord
from dialer.store.base import Base

# A Wednesday inside the French window; the registry is screened that day.
NOW = datetime(2026, 11, 18, 11, 0, tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)
# French mobile blocks that are entirely valid numbers (+33 6X / 7X ........, per the numbering plan).
FR_MOBILE_PREFIXES = np.array([60, 61, 62, 64, 65, 66, 67, 68, 73, 74, 75, 76, 77, 78], dtype=np.uint64)
FR_MOBILE_SPAN = int(FR_MOBILE_PREFIXES.shape[0]) * 10_000_000
CONSENT = ConsentRecord(datetime(2024, 1, 1, tzinfo=UTC), "bench")


def fr_mobiles(index: np.ndarray) -> np.ndarray:
    """Map 0 .. FR_MOBILE_SPAN-1 onto valid French mobile numbers (E.164 digits)."""
    block = FR_MOBILE_PREFIXES[index // np.uint64(10_000_000)]
    return np.uint64(33_000_000_000) + block * np.uint64(10_000_000) + index % np.uint64(10_000_000)


def registry_numbers(count: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picked = np.unique(rng.integers(0, FR_MOBILE_SPAN, size=int(count * 1.1), dtype=np.uint64))
    rng.shuffle(picked)
    return np.sort(fr_mobiles(picked[:count]))


class Traffic:
    """Round trips, commands and SQL statements sent by the gate, for the per-decision figures."""

    round_trips = 0
    commands = 0
    sql = 0

    @classmethod
    def reset(cls) -> None:
        cls.round_trips = cls.commands = cls.sql = 0


class CountingConnection(Connection):
    # A pipeline packs each of its commands, then sends them all in one write: one write, one round trip.
    def pack_command(self, *args: EncodableT) -> list[bytes]:
        Traffic.commands += 1
        return super().pack_command(*args)

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        Traffic.round_trips += 1
        await super().send_packed_command(command, check_health)


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def register_import(gate: ComplianceGate, count: int) -> int:
    """An active Bloctel import row screened on NOW's day (the numbers go straight into the index)."""
    async with gate.dnc.engine.begin() as conn:
        result = await conn.execute(
            insert(DncRegistryImport)
            .values(
                registry_name="bloctel",
                screened_on=NOW.date(),
                imported_at=datetime.now(UTC),
                file_name="bench",
                numbers=count,
                rejected=0,
                active=True,
            )
            .returning(DncRegistryImport.id)
        )
        return int(result.scalar_one())


async def redis_memory(redis: Redis, namespace: str) -> tuple[float, str]:
    """Bytes held by the namespace's DNC keys (MEMORY USAGE summed) and a sample key's encoding."""
    total = 0
    sample = ""
    pipe = redis.pipeline(transaction=False)
    pending = 0
    async for key in redis.scan_iter(match=f"{namespace}dnc:r:*", count=10_000):
        if not sample:
            sample = (await redis.object("ENCODING", key)).decode()
        pipe.memory_usage(key, samples=0)
        pending += 1
        if pending >= 5000:
            total += sum(v or 0 for v in await pipe.execute())
            pending = 0
    if pending:
        total += sum(v or 0 for v in await pipe.execute())
    return total / 1e6, sample


async def redis_baseline(url: str, count: int = 3000) -> str:
    """Latency of a bare GET on this Redis from this process: the floor under the Redis figures."""
    redis = Redis.from_url(url)
    try:
        await redis.ping()
        lat = np.empty(count, dtype=np.int64)
        for i in range(count):
            t = time.perf_counter_ns()
            await redis.get("dialer-bench:none")
            lat[i] = time.perf_counter_ns() - t
    finally:
        await redis.aclose()
    p50, p99 = (np.percentile(lat, q) / 1e6 for q in (50, 99))
    return f"bare Redis GET from asyncio: p50 {p50:.3f} ms, p99 {p99:.3f} ms"


def percentiles_ms(lat: np.ndarray) -> tuple[float, float]:
    p50, p99 = (float(np.percentile(lat, q)) / 1e6 for q in (50, 99))
    return p50, p99


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


async def run_store(store: str, numbers: np.ndarray, decisions: int, redis_url: str, workdir: Path) -> str:
    db_path = workdir / f"{store}.db"
    url = f"sqlite+aiosqlite:///{db_path}"
    engine = create_async_engine(url)
    tables = cast(list[Table], COMPLIANCE_TABLES)
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: Base.metadata.create_all(sync, tables=tables))
    await engine.dispose()
    namespace = f"dialer-bench:{uuid.uuid4().hex[:8]}:"
    redis = Redis.from_url(redis_url, connection_class=CountingConnection) if store == "redis" else None
    # The bare GET gets a client of its own: it must not queue behind the gate's connection.
    probe = Redis.from_url(redis_url) if store == "redis" else None
    config = ComplianceConfig(url, redis_namespace=namespace, audit_flush_seconds=0.25)
    gate = await build_gate(config, redis=redis)

    def count_sql(*_: object) -> None:
        Traffic.sql += 1

    event.listen(gate.dnc.engine.sync_engine, "before_cursor_execute", count_sql)
    try:
        import_id = await register_import(gate, int(numbers.shape[0]))
        gc.collect()
        rss_before = rss_mb()
        t0 = time.perf_counter()
        if redis is not None:
            before = int((await redis.info("memory"))["used_memory"])
            await gate.dnc.load_index("bloctel", import_id, numbers)
            after = int((await redis.info("memory"))["used_memory"])
            keys_mb, encoding = await redis_memory(redis, namespace)
            dnc_mb = keys_mb
            memory_note = (
                f"Redis: MEMORY USAGE of the DNC keys {keys_mb:.1f} MB, INFO used_memory delta "
                f"{(after - before) / 1e6:.1f} MB (shared server), bucket encoding {encoding}"
            )
        else:
            await gate.dnc.load_index("bloctel", import_id, numbers)
            dnc_mb = gate.dnc.memory_bytes() / 1e6
            rss = rss_mb() - rss_before
            memory_note = f"in-process: sorted uint64 array {dnc_mb:.1f} MB, process RSS +{rss:.1f} MB"
        load_s = time.perf_counter() - t0
        print(
            f"[{store}] loaded {numbers.shape[0]:,} DNC numbers in {load_s:.1f} s; {memory_note}", flush=True
        )

        # Some contact history, so the pressure rules read real events.
        rng = np.random.default_rng(11)
        unlisted = fr_mobiles(rng.integers(0, FR_MOBILE_SPAN, size=decisions, dtype=np.uint64))
        for i in range(min(2000, decisions // 10)):
            await gate.record_attempt(f"+{unlisted[i]}", f"lead-{i}", "bench", NOW - timedelta(days=3))
        listed = numbers[rng.integers(0, numbers.shape[0], size=decisions)]
        is_listed = rng.random(decisions) < 0.5
        candidates = np.where(is_listed, listed, unlisted)
        rules = CampaignRules("FR", max_attempts_per_lead=6)
        numbers_tried = candidates.tolist()

        def request(i: int) -> CallRequest:
            # Built per decision, as the campaign loop does: no heap of pending requests to scan.
            return CallRequest(f"+{numbers_tried[i]}", f"lead-{i}", "bench", rules, None, CONSENT)

        for i in range(200):  # warm caches (holidays, zones, the Lua script)
            await gate.check(request(i), NOW)
            if probe is not None:
                await probe.get("dialer-bench:none")
        latencies = np.empty(decisions, dtype=np.int64)
        bare = np.empty(decisions if probe is not None else 0, dtype=np.int64)
        blocked_dnc = 0
        busy = 0.0
        Traffic.reset()
        start = time.perf_counter()
        for i in range(decisions):
            if probe is not None:
                # A bare GET between two decisions: the floor under them, at the same moment.
                t = time.perf_counter_ns()
                await probe.get("dialer-bench:none")
                bare[i] = time.perf_counter_ns() - t
                busy += bare[i] / 1e9
            req = request(i)
            t = time.perf_counter_ns()
            decision = await gate.check(req, NOW)
            latencies[i] = time.perf_counter_ns() - t
            blocked_dnc += decision.rule == "dnc"
        elapsed = time.perf_counter() - start - busy
        expected_dnc = int(np.isin(candidates, numbers).sum())
        if blocked_dnc != expected_dnc:
            raise SystemExit(
                f"[{store}] {blocked_dnc} DNC blocks but {expected_dnc} listed numbers were tried"
            )
        p50, p99 = percentiles_ms(latencies)
        rate = decisions / elapsed
        traffic = (
            f"redis_rtt_per_decision={Traffic.round_trips / decisions:.3f} "
            f"redis_cmds_per_decision={Traffic.commands / decisions:.3f} "
            f"sql_per_decision={Traffic.sql / decisions:.3f}"
        )
        print(
            f"[{store}] {decisions:,} decisions in {elapsed:.2f} s: {rate:,.0f}/s, p50 {p50:.3f} ms, "
            f"p99 {p99:.3f} ms, max {latencies.max() / 1e6:.2f} ms; {blocked_dnc:,} blocked by DNC as "
            f"expected; per decision: {traffic.replace('_per_decision', '')}",
            flush=True,
        )
        result = (
            f"RESULT bench=gate store={store} numbers={numbers.shape[0]} decisions_per_s={rate:.0f} "
            f"p50_ms={p50:.3f} p99_ms={p99:.3f} dnc_mb={dnc_mb:.1f} {traffic}"
        )
        if bare.size:
            bare50, bare99 = percentiles_ms(bare)
            print(
                f"[{store}] bare GET alternating with the decisions: p50 {bare50:.3f} ms, "
                f"p99 {bare99:.3f} ms; "
                f"gate p50 {p50 / bare50:.2f}x, p99 {p99 / bare99:.2f}x a bare GET",
                flush=True,
            )
            result += (
                f" bare_get_p50_ms={bare50:.3f} bare_get_p99_ms={bare99:.3f}"
                f" p99_vs_bare_get={p99 / bare99:.2f}"
            )
        return result
    finally:
        event.remove(gate.dnc.engine.sync_engine, "before_cursor_execute", count_sql)
        await gate.close()
        if probe is not None:
            await probe.aclose()
        if redis is not None:
            batch = [k async for k in redis.scan_iter(match=f"{namespace}*", count=10_000)]
            for i in range(0, len(batch), 10_000):
                await redis.unlink(*batch[i : i + 10_000])
            await redis.aclose()


async def main_async(args: argparse.Namespace) -> None:
    count = args.numbers or (1_000_000 if args.quick else 10_000_000)
    decisions = args.decisions or (10_000 if args.quick else 50_000)
    t = time.perf_counter()
    numbers = registry_numbers(count)
    print(
        f"generated {count:,} distinct French mobile numbers in {time.perf_counter() - t:.1f} s", flush=True
    )
    results = []
    print(f"load average before: {load_average()} (other work on the machine shows in the tails)", flush=True)
    with tempfile.TemporaryDirectory(prefix="dialer-bench-gate-") as tmp:
        for store in args.stores.split(","):
            if store == "redis":
                print(await redis_baseline(args.redis), flush=True)
            results.append(await run_store(store, numbers, decisions, args.redis, Path(tmp)))
    print(f"load average after: {load_average()}", flush=True)
    for line in results:
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="1,000,000 numbers and 10,000 decisions (< 1 min)"
    )
    parser.add_argument("--numbers", type=int, help="DNC numbers to load (default 10,000,000)")
    parser.add_argument("--decisions", type=int, help="decisions to time per store")
    parser.add_argument("--stores", default="inproc,redis", help="inproc, redis or both")
    parser.add_argument("--redis", default=os.environ.get("DIALER_REDIS_URL", "redis://127.0.0.1:6379/0"))
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
