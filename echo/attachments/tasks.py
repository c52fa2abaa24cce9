"""Scheduled attachment maintenance: bytes that no row owns are removed after a day."""

from __future__ import annotations

import logging
from datetime import timedelta
from itertools import islice

from sqlalchemy import select

from echo.attachments.models import Attachment
from echo.attachments.storage import storage
from echo.db import utcnow
from echo.extensions import db
from echo.jobs import task

log = logging.getLogger(__name__)

ORPHAN_AGE = timedelta(days=1)  # far longer than any request or job that writes bytes before its commit
BATCH = 500


@task
def sweep_orphans(min_age_seconds: float = ORPHAN_AGE.total_seconds()) -> int:
    """Delete stored bytes that no attachment row names, once they are a day old (by default); how many went.

    Bytes are written before the transaction that records them commits; a process killed in
    between (or a failed write's temporary file) leaves bytes nobody owns. A rollback removes
    its own at once (`attachments.service`); this catches what a crash left behind. Keys are
    random, so logging them names no one.
    """
    store = storage()
    keys = store.stored_before(utcnow() - timedelta(seconds=min_age_seconds))
    removed = 0
    while batch := list(islice(keys, BATCH)):
        owned = set(db.session.scalars(select(Attachment.s3_key).where(Attachment.s3_key.in_(batch))))
        for key in batch:
            if key not in owned:
                store.delete(key)
                removed += 1
                log.info("removed unowned attachment bytes %s", key)
    db.session.rollback()  # nothing written: end the read transaction
    return removed
