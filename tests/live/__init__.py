

def take(events, count: int, timeout: float = 10.0) -> list[dict]:
    """Up to `count` events from a listener's queue, waiting at most `timeout` seconds in all."""
    import queue
    import time

    found: list[dict] = []
    ends = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < ends:
        try:
            found.append(events.get(timeout=max(0.01, ends - time.monotonic())))
        except queue.Empty:
            break
    return found
