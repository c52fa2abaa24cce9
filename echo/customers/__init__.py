"""Customers feature."""
