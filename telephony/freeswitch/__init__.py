"""FreeSWITCH adapter over the inbound Event Socket (ESL)."""
