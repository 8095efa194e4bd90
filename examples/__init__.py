"""Runnable examples: a user's own metric as a task and a config, with no edit to tfls, its CLI or bench."""
