"""Attachments feature."""
