"""The Grafana dashboard and the alert rules query only what the node exports, and Prometheus'
own ``promtool`` accepts the rules, the dashboard's queries and the alerts' unit tests."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from dialer.runtime.metrics import exported_names

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "config/grafana/dialer.json"
ALERTS = ROOT / "config/prometheus/alerts.yml"
# Served by the follow-up module's collector (after-call service levels), not by this one.
FOLLOW_UP_GAUGES = frozenset({"dialer_followup_overdue", "dialer_callbacks_overdue"})
_METRIC = re.compile(r"\bdialer_[a-z0-9_]+\b")


def served() -> frozenset[str]:
    return exported_names() | FOLLOW_UP_GAUGES


def _names(expr: str) -> set[str]:
    return set(_METRIC.findall(expr))


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]


def _alerts() -> list[dict[str, Any]]:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in rules["groups"] for rule in group["rules"]]


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: apt-get install prometheus (scripts/test does)"
    return found


def test_every_dashboard_panel_names_a_metric_the_node_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = _dashboard_exprs()
    assert len(exprs) >= 12
    for expr in exprs:
        assert _names(expr), expr
        assert _names(expr) <= served(), (expr, _names(expr) - served())
    for variable in dashboard.get("templating", {}).get("list", []):
        assert _names(str(variable.get("query", ""))) <= served()
    titles = " ".join(p.get("title", "") for p in _panels(dashboard)).lower()
    for topic in (
        "agents by state",
        "abandonment against the cap",
        "calls per outcome",
        "contact rate",
        "connect delay p95",
        "pbx link health",
        "compliance blocks",
        "overdue follow-ups",
    ):
        assert topic in titles, topic
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids))


def test_every_alert_rule_names_a_metric_the_node_exports() -> None:
    alerts = _alerts()
    names = {rule["alert"] for rule in alerts}
    assert {
        "DialerAbandonmentNearCap",
        "DialerPbxLinkDown",
        "DialerNoDialsWhileAgentsWait",
        "DialerCallbacksOverdue",
    } <= names
    for rule in alerts:
        assert _names(rule["expr"]), rule["alert"]
        assert _names(rule["expr"]) <= served(), (rule["alert"], _names(rule["expr"]) - served())
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


def test_a_name_the_node_does_not_export_is_caught() -> None:
    assert not _names("rate(dialer_calls_placed_total[5m])") <= served()


def test_promtool_accepts_the_alert_rules_and_their_unit_tests() -> None:
    promtool = _promtool()
    checked = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in checked.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"], capture_output=True, text=True, cwd=ALERTS.parent
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    # Each panel's query as a recording rule: promtool then parses it as Prometheus would.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(_dashboard_exprs())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    checked = subprocess.run([_promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
