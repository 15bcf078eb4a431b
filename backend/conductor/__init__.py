"""The embedded conductor pipeline behind ``baton conduct`` and ``baton demo``: music -> motion -> rigs -> files."""
