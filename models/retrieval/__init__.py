"""retrieval — see docs/architecture.md."""
