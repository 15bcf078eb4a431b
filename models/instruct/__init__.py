"""instruct — see docs/architecture.md."""
