"""Pure rules with no I/O: call and agent state machines, outcomes, dispositions, pacing maths."""
