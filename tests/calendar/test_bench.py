"""bench/field_calendar.py at a tiny size: the RESULT lines whole, every race round with one winner."""

from __future__ import annotations

import re

from bench import field_calendar


def fields(line: str) -> dict[str, str]:
    assert line.startswith("RESULT ")
    return dict(re.findall(r"(\w+)=(\S+)", line))


def test_the_slot_search_bench_prints_its_figures() -> None:
    got = fields(field_calendar.bench_slots(salespeople=3, per_day=3, searches=5, seed=1))
    assert set(got) == {"bench", "salespeople", "visits", "searches", "p50_ms", "p99_ms"}
    assert int(got["visits"]) > 0


async def test_the_race_bench_has_one_winner_a_round(database_url: str) -> None:
    got = fields(await field_calendar.bench_race(database_url, racers=3, rounds=2))
    assert got["one_winner_rounds"] == "2" and got["rounds"] == "2"
