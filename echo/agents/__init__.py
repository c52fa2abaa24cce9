"""Agents feature."""
