"""SIGHUP: read the settings file and the compliance profiles again; apply what can change live.

No call is dropped: nothing is reconnected or restarted.  What changes live:

* ``[logging]`` level and format;
* ``[pacing] tick_s``;
* each PBX's trunk limits, ``max_lines`` and ``max_calls_per_second`` (the pool's members);
* the compliance profiles (the operator's file, or ``[compliance] profiles_file`` naming another):
  the gate decides with the new ones from the next call, and each campaign's abandonment cap
  follows its profile.  A running campaign that the new profiles refuse is named in the log: the
  gate blocks its calls (fail closed) until the file is fixed and reloaded, or the campaign stopped.

Every other key (database, Redis, node id, listeners, a PBX's address or credentials, PBXs added or
removed, the drain limit, the hash key) needs a restart: the log names each one that changed, and the
node keeps running with its old value.  A file that does not parse, or profiles that loosen the law,
change nothing: the node keeps its settings, and says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING

from dialer.compliance.profiles import ProfileSet, load_profiles
from dialer.domain.compliance import ProfileError
from dialer.runtime.pbx_pool import PbxPool
from dialer.settings import PbxSettings, Settings, SettingsError

if TYPE_CHECKING:
    from dialer.runtime.bootstrap import Runtime
    from dialer.runtime.ops_metrics import Reloads

log = logging.getLogger(__name__)

# Settings field -> the key an operator writes; the live ones first.
LIVE_KEYS = {
    "log_level": "logging.level",
    "log_format": "logging.format",
    "tick_s": "pacing.tick_s",
    "profiles_file": "compliance.profiles_file",
}
RESTART_KEYS = {
    "database_url": "database.url",
    "redis_url": "redis.url",
    "redis_namespace": "redis.namespace",
    "node_id": "node.id",
    "metrics_bind": "metrics.bind",
    "metrics_port": "metrics.port",
    "api_bind": "api.bind",
    "api_port": "api.port",
    "drain_timeout_s": "shutdown.drain_timeout_s",
    "number_hash_key": "$DIALER_NUMBER_HASH_KEY",
}
_NOT_COMPARED = {"pbxs", "config_path", "database_source"}
_PBX_LIVE = {"max_lines", "max_calls_per_second"}


@dataclass
class ReloadReport:
    result: str  # applied | partial | failed
    applied: list[str] = field(default_factory=list)
    needs_restart: list[str] = field(default_factory=list)
    refused_campaigns: list[str] = field(default_factory=list)
    error: str = ""


def differences(old: Settings, new: Settings) -> tuple[list[str], list[str]]:
    """(keys that changed and apply live, keys that changed and need a restart)."""
    live, restart = [], []
    for f in fields(Settings):
        if f.name in _NOT_COMPARED or getattr(old, f.name) == getattr(new, f.name):
            continue
        if f.name in LIVE_KEYS:
            live.append(LIVE_KEYS[f.name])
        else:
            restart.append(RESTART_KEYS.get(f.name, f.name))
    old_pbx = {p.name: p for p in old.pbxs}
    new_pbx = {p.name: p for p in new.pbxs}
    for name in sorted(old_pbx.keys() ^ new_pbx.keys()):
        restart.append(f"pbx.{name} ({'added' if name in new_pbx else 'removed'})")
    for name in sorted(old_pbx.keys() & new_pbx.keys()):
        for f in fields(PbxSettings):
            if getattr(old_pbx[name], f.name) == getattr(new_pbx[name], f.name):
                continue
            key = f"pbx.{name}.{'group' if f.name == 'groups' else f.name}"
            (live if f.name in _PBX_LIVE else restart).append(key)
    return live, restart


class Reloader:
    """Holds the settings the node runs with; ``reload`` applies a new reading of the file."""

    def __init__(
        self,
        runtime: Runtime,
        settings: Settings,
        *,
        read: Callable[[], Settings],
        configure_logging: Callable[[Settings], None],
        reloads: Reloads | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self._read = read
        self._configure_logging = configure_logging
        self.reloads = reloads

    async def reload(self, now: datetime) -> ReloadReport:
        report = await self._reload(now)
        if self.reloads is not None:
            self.reloads.counts[report.result] += 1
        return report

    async def _reload(self, now: datetime) -> ReloadReport:
        try:
            new = self._read()
            profiles = load_profiles(new.profile_files)
        except (SettingsError, ProfileError) as exc:
            log.error("reload refused, the node keeps its settings: %s", exc)
            return ReloadReport("failed", error=str(exc))
        live, restart = differences(self.settings, new)
        report = ReloadReport("partial" if restart else "applied", live, restart)
        # Only what applies live is taken: a later reload names the pending keys again.
        running = self.settings
        self.settings = replace(
            running,
            log_level=new.log_level,
            log_format=new.log_format,
            tick_s=new.tick_s,
            profiles_file=new.profiles_file,
            pbxs=tuple(_with_limits(p, new) for p in running.pbxs),
        )
        self._configure_logging(self.settings)
        self.runtime.engine.tick_s = new.tick_s
        pool = self.runtime.pbx
        if isinstance(pool, PbxPool):
            for member in pool.members:
                table = next((p for p in new.pbxs if p.name == member.name), None)
                if table is not None:
                    member.max_lines, member.calls_per_second = table.max_lines, table.max_calls_per_second
        report.refused_campaigns = await self._apply_profiles(profiles)
        if restart:
            log.warning(
                "reload: %s changed but cannot change live; the node keeps the old value until it "
                "restarts (systemctl restart dialer)",
                ", ".join(restart),
            )
        log.info(
            "reload: settings and compliance profiles read again; applied live: %s",
            ", ".join(live) or "nothing changed",
        )
        return report

    async def _apply_profiles(self, profiles: ProfileSet) -> list[str]:
        """The gate takes the new profiles; each campaign's cap follows its profile."""
        runtime = self.runtime
        refused = []
        for campaign_id, run in runtime.engine.campaigns.items():
            rules = runtime.gate_port.rules.get(campaign_id)
            if rules is None:
                continue
            try:
                profile = profiles.for_campaign(rules)
            except ProfileError as exc:
                refused.append(run.plan.name)
                log.error(
                    "reload: campaign %s: the new compliance profiles refuse it (%s); the gate blocks its "
                    "calls until the profiles file is fixed and reloaded",
                    run.plan.name,
                    exc,
                )
                continue
            record = await runtime.db.campaigns.get(int(campaign_id))
            cap = record.settings.abandon_cap
            if profile.abandon_rate_cap:
                cap = min(cap, profile.abandon_rate_cap)
            run.pacer.tracker.cap = cap
        runtime.gate.profiles = profiles
        return refused


def _with_limits(running: PbxSettings, new: Settings) -> PbxSettings:
    table = next((p for p in new.pbxs if p.name == running.name), None)
    if table is None:
        return running
    return replace(running, max_lines=table.max_lines, max_calls_per_second=table.max_calls_per_second)
