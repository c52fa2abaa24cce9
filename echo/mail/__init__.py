"""Mail feature."""
