"""The worker's clock enqueues each periodic job once per period, however many workers run it."""

from rq import Queue

from echo.jobs import redis_connection
from workers import clock


def test_each_job_fires_once_per_period_across_workers(app):
    first = clock.tick(app)
    second = clock.tick(app)  # another worker, same period
    assert sorted(first) == ["echo.attachments.tasks.sweep_orphans", "echo.mail.tasks.sweep_outbox",
                             "echo.notifications.tasks.notify",
                             "echo.privacy.tasks.retention", "echo.tickets.tasks.auto_close",
                             "echo.tickets.tasks.wake_snoozed"]
    assert second == []
    assert Queue("sweep", connection=redis_connection()).count == 1
    assert Queue("maintenance", connection=redis_connection()).count == 3


def test_clock_jobs_run_in_a_worker(app, run_jobs):
    clock.tick(app)
    run_jobs()
    assert Queue("sweep", connection=redis_connection()).count == 0
    assert Queue("maintenance", connection=redis_connection()).count == 0
