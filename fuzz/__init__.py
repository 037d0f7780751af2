"""Fuzzing: real-world messages, mutated, through the daemon's own stages (`make fuzz`)."""
