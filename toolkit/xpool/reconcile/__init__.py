"""Observe -> decide (xpool.policy) -> act, with an injected clock, leader election and an audit log."""
