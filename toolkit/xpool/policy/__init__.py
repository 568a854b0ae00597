"""Pure scheduling decisions: tiers, borrowing, preemption and autoscaling -> actions with reasons."""
