"""The [node] keys of several nodes: lease_s."""

from __future__ import annotations

import pytest

from dialer.settings import SettingsError, parse


def test_lease_time_is_read_from_the_node_table_with_a_default():
    assert parse({}, {}).lease_s == 10.0
    assert parse({"node": {"id": "node-b", "lease_s": 4}}, {}).lease_s == 4.0


def test_a_lease_time_out_of_range_names_the_key():
    with pytest.raises(SettingsError, match=r"node.lease_s: 0.2 is outside 1..300 seconds"):
        parse({"node": {"lease_s": 0.2}}, {})
