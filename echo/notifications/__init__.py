"""Agents' notifications: new tickets, customer replies, assignments and @mentions, in the console's bell
and by email, each as the agent chose; made by the worker from the event log, never in a request."""
