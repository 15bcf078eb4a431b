"""Baton backend: pipelines, the local HTTP server, the motion library and the `baton` command line.

Imports only downward (``backend`` -> ``models``); never imported by the Blender add-on.
"""

__version__ = "0.1.0"
