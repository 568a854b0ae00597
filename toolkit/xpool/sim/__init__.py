"""Request traces and the trace-driven simulator that replays them through the scheduling policy."""
