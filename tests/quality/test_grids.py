"""Grids: the shipped phone-contact grid, the weighted score without N/A items, clear errors."""

from __future__ import annotations

import pytest

from dialer.quality.evaluations import store_shipped_grids
from dialer.quality.grids import (
    AUTO_FACTS,
    Answer,
    GridError,
    grid_from_dict,
    grid_names,
    score,
    shipped_grids,
)
from dialer.store.db import Database


def test_the_phone_contact_grid_ships_with_person_and_system_items() -> None:
    grid = shipped_grids()["phone_contact"]
    ids = {i.id for i in grid.items}
    assert {
        "brand_and_town",
        "agent_introduced",
        "customer_by_name",
        "budget_asked",
        "test_drive_offered",
    } <= ids
    autos = {i.auto for i in grid.items if i.auto}
    assert autos == AUTO_FACTS  # every fact the dialer knows is used by the example


def test_score_is_weighted_and_leaves_out_not_applicable_items() -> None:
    grid = grid_from_dict(
        {
            "name": "g",
            "sections": [
                {
                    "title": "s",
                    "items": [
                        {"id": "a", "text": "A", "weight": 3},
                        {"id": "b", "text": "B", "weight": 1},
                        {"id": "c", "text": "C", "weight": 6},
                    ],
                }
            ],
        }
    )
    assert score(grid, {"a": Answer.YES, "b": Answer.NO, "c": Answer.NA}) == 75.0
    assert score(grid, {"a": Answer.NO, "b": Answer.NO, "c": Answer.YES}) == 60.0
    assert score(grid, {"a": Answer.NA, "b": Answer.NA, "c": Answer.NA}) is None
    with pytest.raises(GridError, match="missing c"):
        score(grid, {"a": Answer.YES, "b": Answer.YES})


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"id": "a", "text": "A", "weight": 0}, "weight"),
        ({"id": "a", "text": "", "weight": 1}, "text"),
        ({"id": "a", "text": "A", "auto": "mind_reading"}, "not a fact the dialer knows"),
        ({"id": "a", "text": "A", "wieght": 2}, "unknown key"),
    ],
)
def test_a_bad_item_is_refused_naming_what_to_fix(item: dict[str, object], message: str) -> None:
    with pytest.raises(GridError, match=message):
        grid_from_dict({"name": "g", "sections": [{"title": "s", "items": [item]}]})


async def test_the_node_start_stores_the_shipped_grids_once(db: Database) -> None:
    await store_shipped_grids(db)
    await store_shipped_grids(db)  # unchanged files: no new version
    async with db.read_session() as s:
        assert dict(await grid_names(s)) == {"phone_contact": 1}
