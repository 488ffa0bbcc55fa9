"""Use cases: the campaign loop, the agent registry, the answered-call decision, and the bootstrap."""
