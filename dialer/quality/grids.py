"""Evaluation grids: configurable forms of sections and yes / no / N/A items, each with a weight.

A grid is a TOML file in ``dialer/quality/grids/`` (``phone_contact.toml`` ships as an
example).  Items with ``auto = "<fact>"`` are answered by the dialer from the record
(:mod:`dialer.quality.facts`); the others by a person listening to the call.  Grids are
versioned in the record: loading a changed file stores a new version, and every
evaluation keeps the version it was scored against, so an old score keeps its meaning.

The score is the weight of the "yes" items over the weight of the items that apply
(N/A items count neither way), as a percentage.
"""

from __future__ import annotations

import enum
import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.quality.tables import GridVersion

GRIDS_DIR = Path(__file__).resolve().parent / "grids"

# The facts the dialer answers from the record (dialer.quality.facts computes them).
AUTO_FACTS = frozenset(
    {
        "callback_within_1h",
        "info_sent_within_2h",
        "follow_up_within_48h",
        "preferred_channel_respected",
        "name_and_contact_confirmed",
        "appointment_offered",
    }
)


class GridError(ValueError):
    """A grid file or an evaluation that cannot be used; the message says what to fix."""


class Answer(enum.StrEnum):
    YES = "yes"
    NO = "no"
    NA = "na"  # not applicable: left out of the score


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    text: str
    weight: float
    auto: str | None = None  # a fact of AUTO_FACTS: answered by the dialer


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Grid:
    name: str
    title: str
    sections: tuple[Section, ...]

    @property
    def items(self) -> tuple[Item, ...]:
        return tuple(i for s in self.sections for i in s.items)

    def item(self, item_id: str) -> Item:
        for i in self.items:
            if i.id == item_id:
                return i
        raise GridError(f"grid {self.name} has no item {item_id!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "sections": [
                {
                    "title": s.title,
                    "items": [
                        {"id": i.id, "text": i.text, "weight": i.weight}
                        | ({"auto": i.auto} if i.auto else {})
                        for i in s.items
                    ],
                }
                for s in self.sections
            ],
        }

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def grid_from_dict(raw: Mapping[str, Any], where: str = "grid") -> Grid:
    """Check and build a grid; every problem names the key to fix."""
    name = raw.get("name")
    if not isinstance(name, str) or not name.replace("_", "").isalnum() or len(name) > 64:
        raise GridError(f"{where}: `name` must be letters, digits and _ (at most 64), got {name!r}")
    title = raw.get("title", name)
    sections_raw = raw.get("sections")
    if not isinstance(sections_raw, list) or not sections_raw:
        raise GridError(f"{where}: add at least one [[sections]] with [[sections.items]]")
    seen: set[str] = set()
    sections: list[Section] = []
    for n, sec in enumerate(sections_raw, 1):
        items_raw = sec.get("items") if isinstance(sec, dict) else None
        if not isinstance(items_raw, list) or not items_raw:
            raise GridError(f"{where}: section {n} has no [[sections.items]]")
        items: list[Item] = []
        for m, it in enumerate(items_raw, 1):
            at = f"{where}: section {n} item {m}"
            if not isinstance(it, dict):
                raise GridError(f"{at}: an item is a table with id, text and weight")
            item_id, text, weight, auto = it.get("id"), it.get("text"), it.get("weight", 1), it.get("auto")
            if not isinstance(item_id, str) or not item_id or item_id in seen:
                raise GridError(f"{at}: `id` must be a text unique in the grid, got {item_id!r}")
            if not isinstance(text, str) or not text.strip():
                raise GridError(f"{at} ({item_id}): `text` says what is checked")
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight <= 100:
                raise GridError(f"{at} ({item_id}): `weight` must be a number above 0 and at most 100")
            if auto is not None and auto not in AUTO_FACTS:
                raise GridError(
                    f"{at} ({item_id}): `auto` {auto!r} is not a fact the dialer knows; "
                    f"use one of {', '.join(sorted(AUTO_FACTS))}"
                )
            unknown = set(it) - {"id", "text", "weight", "auto"}
            if unknown:
                raise GridError(f"{at} ({item_id}): unknown key(s) {', '.join(sorted(unknown))}")
            seen.add(item_id)
            items.append(Item(item_id, text.strip(), float(weight), auto))
        sections.append(Section(str(sec.get("title", f"Section {n}")), tuple(items)))
    return Grid(name, str(title), tuple(sections))


def load_grid_file(path: Path) -> Grid:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise GridError(f"grid file {path}: {exc}") from None
    return grid_from_dict(raw, str(path.name))


def shipped_grids(folder: Path = GRIDS_DIR) -> dict[str, Grid]:
    grids = [load_grid_file(p) for p in sorted(folder.glob("*.toml"))]
    return {g.name: g for g in grids}


def score(grid: Grid, answers: Mapping[str, Answer]) -> float | None:
    """Weighted percentage of "yes" over the items that apply; None when none applies.

    Every item of the grid must be answered.
    """
    missing = [i.id for i in grid.items if i.id not in answers]
    if missing:
        raise GridError(f"answer every item of grid {grid.name}: missing {', '.join(missing)}")
    extra = set(answers) - {i.id for i in grid.items}
    if extra:
        raise GridError(f"grid {grid.name} has no item(s) {', '.join(sorted(extra))}")
    applied = [(i, Answer(answers[i.id])) for i in grid.items if Answer(answers[i.id]) is not Answer.NA]
    total = sum(i.weight for i, _ in applied)
    if not total:
        return None
    return round(100.0 * sum(i.weight for i, a in applied if a is Answer.YES) / total, 1)


# -- versions in the record ------------------------------------------------------------------


async def store_grid(s: AsyncSession, grid: Grid, now: datetime) -> int:
    """The grid's version in the record: the latest one if unchanged, else a new one."""
    latest = (
        (
            await s.execute(
                select(GridVersion).where(GridVersion.name == grid.name).order_by(GridVersion.version.desc())
            )
        )
        .scalars()
        .first()
    )
    digest = grid.digest
    if latest is not None and latest.digest == digest:
        return latest.version
    version = 1 if latest is None else latest.version + 1
    s.add(
        GridVersion(name=grid.name, version=version, digest=digest, definition=grid.to_dict(), created_at=now)
    )
    await s.flush()
    return version


async def grid_version(s: AsyncSession, name: str, version: int | None = None) -> tuple[Grid, int]:
    """A stored grid version (the newest without ``version``)."""
    q = select(GridVersion).where(GridVersion.name == name)
    q = q.order_by(GridVersion.version.desc()) if version is None else q.where(GridVersion.version == version)
    row = (await s.execute(q)).scalars().first()
    if row is None:
        raise GridError(f"no grid {name!r}{'' if version is None else f' version {version}'} in the record")
    return grid_from_dict(row.definition, f"grid {name} v{row.version}"), row.version


async def grid_names(s: AsyncSession) -> list[tuple[str, int]]:
    rows = await s.execute(select(GridVersion.name, func.max(GridVersion.version)).group_by(GridVersion.name))
    return sorted((n, int(v)) for n, v in rows)
