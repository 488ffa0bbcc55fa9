"""The field calendar: how long the slot search takes over busy calendars, and booking races on a database.

- slots: ``--salespeople`` salespeople (default 30) around Paris, each with ``--per-day`` visits a
  working day (default 5) booked over the 14-day horizon; the next 5 free slots for random
  postcodes (every salesperson covering the postcode is searched), p50 / p99 of the search alone.
- race: on a database (``--db``, default a temporary SQLite file; give a PostgreSQL URL to see the
  row lock at work), ``--racers`` agents (default 8) on two "nodes" (two connection pools) book the
  same salesperson's same slot at once, ``--rounds`` times (default 10); each round must end with
  exactly one visit and every other agent refused. Also p50 / p99 of one uncontended booking.

    .venv/bin/python bench/field_calendar.py [--quick] [--db postgresql://postgres@127.0.0.1/DBNAME]

RESULT bench=calendar_slots salespeople=... visits=... searches=... p50_ms=... p99_ms=...
RESULT bench=calendar_race backend=... rounds=... racers=... one_winner_rounds=... book_p50_ms=...
  book_p99_ms=...
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dialer.calendar.model import Place, Salesperson, parse_hours
from dialer.calendar.slots import Visit, check_visit, free_slots
from dialer.calendar.travel import CalendarConfig
from dialer.domain.campaign import CampaignSettings
from dialer.service import Refused
from dialer.service.calendar import CalendarService
from dialer.store.db import Database
from dialer.store.models import Attempt
from dialer.store.repositories import NewLead

CONFIG_TOML = (Path(__file__).resolve().parents[1] / "config" / "calendar.toml").read_text(encoding="utf-8")
POSTCODES = ("75002", "75011", "75015", "75018", "92100", "92200", "93100", "93200", "94200")
NOW = datetime(2026, 12, 6, 18, tzinfo=UTC)  # a Sunday evening: the horizon starts on Monday


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_slots(salespeople: int, per_day: int, searches: int, seed: int) -> str:
    rng = random.Random(seed)
    config = CalendarConfig.from_toml(CONFIG_TOML)
    people = [
        Salesperson(
            f"sp{i}",
            f"SP {i}",
            f"sp{i}@example.com",
            "Europe/Paris",
            Place(rng.choice(POSTCODES)),
            tuple(rng.sample(("75", "92", "93", "94"), 2)),
            parse_hours("mon-fri 08:00-19:00, sat 09:00-13:00"),
        )
        for i in range(salespeople)
    ]
    calendars: dict[str, list[Visit]] = {}
    visits = 0
    for sp in people:
        mine: list[Visit] = []
        for day in range(config.horizon_days):
            tries = 0
            booked_today = 0
            while booked_today < per_day and tries < 60:
                tries += 1
                start = NOW + timedelta(days=day, hours=rng.randrange(12, 26), minutes=rng.choice((0, 30)))
                place = Place(rng.choice([p for p in POSTCODES if sp.covers(p)]))
                if (
                    check_visit(sp, mine, start, start + config.appointment, place, config.travel, NOW)
                    is None
                ):
                    mine.append(Visit(len(mine), start, start + config.appointment, place))
                    booked_today += 1
        calendars[sp.id] = mine
        visits += len(mine)
    times: list[float] = []
    for _ in range(searches):
        postcode = rng.choice(POSTCODES)
        t0 = time.perf_counter()
        free_slots(people, calendars, Place(postcode), config, NOW, count=5)
        times.append((time.perf_counter() - t0) * 1000)
    return (
        f"RESULT bench=calendar_slots salespeople={salespeople} visits={visits} searches={searches} "
        f"p50_ms={_percentile(times, 0.5):.2f} p99_ms={_percentile(times, 0.99):.2f}"
    )


async def bench_race(url: str, racers: int, rounds: int) -> str:
    first, second = Database(url), Database(url)
    await first.connect()
    await first.migrate()
    await second.connect()
    try:
        now = datetime.now(UTC)
        campaign = await first.campaigns.create(
            f"calendar-bench-{uuid.uuid4().hex[:6]}",
            CampaignSettings(dial_string="PJSIP/{digits}@t", caller_id="+33100000000"),
            now=now,
        )
        calendar = CalendarService(first)
        await calendar.set_config(CalendarConfig.from_toml(CONFIG_TOML), "bench")
        sp_id = f"bench-{uuid.uuid4().hex[:8]}"
        await calendar.add_salesperson(
            sp_id,
            name="Bench",
            email="bench@example.com",
            timezone="Europe/Paris",
            home_postcode="75001",
            areas="75",
            hours="mon-sun 00:00-23:59",
        )
        calls_needed = racers * rounds + rounds
        list_id = await first.leads.create_list(campaign.id, "bench", "bench.csv", "FR", now=now)
        phones = [f"+3361{i:07d}" for i in range(calls_needed)]
        await first.leads.add(
            campaign.id, list_id, [NewLead(phone=p, timezones=("Europe/Paris",)) for p in phones], now=now
        )
        by_phone = {lead.phone: lead.id async for lead in first.leads.iter_leads(campaign.id)}
        calls: list[str] = []
        async with first.session() as s, s.begin():
            for phone in phones:
                attempt_id = str(uuid.uuid4())
                s.add(
                    Attempt(
                        id=attempt_id,
                        campaign_id=campaign.id,
                        lead_id=by_phone[phone],
                        number=phone,
                        node_id="bench",
                        status="closed",
                        created_at=now,
                        agent_id="agent",
                    )
                )
                calls.append(attempt_id)
        nodes = [CalendarService(db) for db in (first, second)]
        base = (now + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)  # 10:00 in Paris
        one_winner = 0
        for r in range(rounds):
            racing = [calls.pop() for _ in range(racers)]
            results = await asyncio.gather(
                *(
                    nodes[i % 2].book("agent", call, sp_id, base + timedelta(days=r), postcode="75011")
                    for i, call in enumerate(racing)
                ),
                return_exceptions=True,
            )
            won = [x for x in results if not isinstance(x, BaseException)]
            refused = [x for x in results if isinstance(x, Refused)]
            one_winner += len(won) == 1 and len(refused) == racers - 1
        times: list[float] = []
        for r in range(rounds):  # uncontended: one booking at a time, on free days further on
            t0 = time.perf_counter()
            await nodes[r % 2].book(
                "agent", calls.pop(), sp_id, base + timedelta(days=rounds + r), postcode="75011"
            )
            times.append((time.perf_counter() - t0) * 1000)
        return (
            f"RESULT bench=calendar_race backend={first.engine.dialect.name} rounds={rounds} racers={racers} "
            f"one_winner_rounds={one_winner} book_p50_ms={statistics.median(times):.1f} "
            f"book_p99_ms={_percentile(times, 0.99):.1f}"
        )
    finally:
        await second.close()
        await first.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for the tests")
    parser.add_argument("--salespeople", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=5)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--racers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.quick:
        args.salespeople, args.searches, args.racers, args.rounds = 4, 10, 3, 2
    print(bench_slots(args.salespeople, args.per_day, args.searches, args.seed), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite+aiosqlite:///{Path(tmp) / 'calendar.db'}"
        print(asyncio.run(bench_race(url, args.racers, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
