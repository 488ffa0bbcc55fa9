"""HTTP API, agent screen and /metrics."""
