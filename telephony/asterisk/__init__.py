"""Asterisk adapter: AMI client, call tracker and FastAGI server.

``AsteriskPbx`` (adapter.py) is the ``telephony.base.Pbx`` the runtime uses;
``AsteriskSettings`` (settings.py) configures it.  The other modules are its
parts: protocol.py (sans-IO AMI codec), tracker.py (AMI events -> call
events), client.py (the AMI connection), fastagi.py (answered calls).
"""

from telephony.asterisk.adapter import AsteriskPbx
from telephony.asterisk.settings import AsteriskSettings

__all__ = ["AsteriskPbx", "AsteriskSettings"]
