"""Local servers that speak the protocols of services we cannot reach from tests."""
