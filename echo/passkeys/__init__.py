"""Passkeys (WebAuthn) for agents and customers; the one place that speaks the WebAuthn protocol."""
