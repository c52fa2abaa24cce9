"""Customer support portal API (/api/v1/support) and customer sign-in."""
