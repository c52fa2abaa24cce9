"""Outbound feature: agent replies and Postmark delivery webhooks."""
