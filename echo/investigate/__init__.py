"""Investigate: internal tickets filed from a console status snapshot."""
