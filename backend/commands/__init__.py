"""One module per ``baton`` command; see :mod:`backend.cli` for the contract."""
