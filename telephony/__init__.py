"""PBX adapters behind one interface (``telephony.base``): Asterisk, FreeSWITCH, and a simulator."""
