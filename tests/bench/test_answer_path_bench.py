"""bench/answer_path.py at a tiny size: every call one outcome, no agent stuck, the RESULT lines whole.

No timing is asserted: the machines are shared and noisy; the bench itself prints the ratios.
"""

from __future__ import annotations

import re

import pytest

from bench import answer_path

CALLS = 20
AGENTS = 5
SCALE = 10.0

RESULT_KEYS = {
    "bare": {"bench", "mode", "calls", "p50_ms", "p99_ms"},
    "dialer": {
        "bench",
        "mode",
        "calls",
        "p50_ms",
        "p99_ms",
        "bare_p50_ms",
        "bare_p99_ms",
        "ratio_p99",
        "engine_p99_ms",
        "one_outcome",
        "agents_stuck",
    },
}
RESULT_KEYS["stalled_store"] = RESULT_KEYS["dialer"] | {
    "stall_s",
    "agents_stale_max",
    "agents_stale_longest_s",
    "agents_stale_at_stop",
}


async def test_bare_run_connects_every_call_once_and_hands_every_agent_back() -> None:
    result = await answer_path.run_bare(CALLS, AGENTS, SCALE)
    assert result.attempts == CALLS
    assert result.one_outcome_each
    assert result.calls == CALLS  # every call reached its agent's bridge
    assert result.agents_stuck == 0


async def test_dialer_run_gives_every_call_exactly_one_outcome_and_leaves_no_agent_stuck() -> None:
    result = await answer_path.run_dialer(CALLS, AGENTS, SCALE)
    assert result.attempts == CALLS
    assert result.one_outcome_each
    assert result.outcomes == {"connected": CALLS}
    assert result.calls == CALLS
    assert result.agents_stuck == 0


async def test_stalled_store_run_still_closes_every_call_and_frees_every_agent() -> None:
    result = await answer_path.run_dialer(3, AGENTS, SCALE, stall_s=0.2)
    assert result.mode == "stalled_store"
    assert result.attempts == 3
    assert result.one_outcome_each
    assert result.outcomes == {"connected": 3}
    assert result.agents_stuck == 0


def test_main_prints_a_result_line_per_run_with_every_key(capsys: pytest.CaptureFixture[str]) -> None:
    answer_path.main(
        [
            "--calls",
            str(CALLS),
            "--agents",
            str(AGENTS),
            "--stall-s",
            "0.2",
            "--stalled-calls",
            "3",
            "--rounds",
            "2",
        ]
    )  # the exit code depends on timings: not asserted
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("RESULT ")]
    modes: dict[str, dict[str, str]] = {}
    for line in lines:
        pairs = dict(re.findall(r"(\w+)=(\S+)", line))
        assert pairs["bench"] == "answer_path"
        modes[pairs["mode"]] = pairs
    assert set(modes) == set(RESULT_KEYS)
    for mode, keys in RESULT_KEYS.items():
        assert keys <= set(modes[mode]), (mode, keys - set(modes[mode]))
        assert modes[mode]["calls"] != "0"
    assert modes["dialer"]["one_outcome"] == "1"
    assert modes["dialer"]["agents_stuck"] == "0"
    assert modes["stalled_store"]["agents_stuck"] == "0"
