"""sd_notify messages reach the socket systemd gives; without one nothing is sent."""

from __future__ import annotations

import socket

from dialer.runtime.systemd import Notifier


def test_ready_status_and_watchdog_reach_the_notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"})
        assert notifier.watchdog_interval_s == 15.0
        notifier.ready("dialing 2 campaigns")
        notifier.watchdog()
        notifier.stopping()
        got = [server.recv(256).decode() for _ in range(3)]
    assert got == ["READY=1\nSTATUS=dialing 2 campaigns", "WATCHDOG=1", "STOPPING=1"]


def test_outside_systemd_notifier_is_silent():
    notifier = Notifier({})
    assert not notifier.enabled and notifier.watchdog_interval_s is None
    notifier.ready()
