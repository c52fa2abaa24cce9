"""Tickets feature."""
