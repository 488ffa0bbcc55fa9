"""Asterisk adapter: AMI client, call tracker and FastAGI server."""
