"""Inbound feature."""
