"""Live events: what changes on tickets, streamed to agents' and customers' browsers (Server-Sent Events)."""
