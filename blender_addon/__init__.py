"""Baton Blender add-on (the add-on helper owns this file; client.py and wire.py import without bpy)."""
