"""Baton's model library: the motion core, model families, metrics, training and export. No server code."""
