"""Bytes no row owns do not pile up (issue 16 item 9): failed writes leave nothing, and what a
killed process left behind is swept once a day old, locally and on S3."""

from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import select

from echo.attachments.models import Attachment
from echo.attachments.storage import LocalStorage, new_key, storage
from echo.attachments.tasks import sweep_orphans
from tests.mailbuilder import attachment, inbound_payload, post_inbound


def age(app, key: str, days: float) -> None:
    """Make a local file look `days` old."""
    path = app.config["ECHO"].instance_path / "attachments" / key
    then = time.time() - days * 86400
    os.utime(path, (then, then))


def test_a_write_that_fails_leaves_no_temporary_file(tmp_path):
    store = LocalStorage(tmp_path)
    key = new_key()
    (tmp_path / key).parent.mkdir(parents=True)
    (tmp_path / key).mkdir()  # the final name is taken by a directory: the rename fails after the write
    with pytest.raises(OSError):
        store.put(key, b"x" * 1000, "text/plain")
    assert [p.name for p in (tmp_path / "att").iterdir()] == [key.split("/")[1]]


def test_unowned_bytes_older_than_a_day_are_swept_and_owned_ones_kept(app, client, db, caplog):
    post_inbound(client, inbound_payload(attachments=[attachment("kept.txt", b"kept", "text/plain")]))
    owned = db.session.scalar(select(Attachment.s3_key))
    orphan, fresh_orphan, temp = new_key(), new_key(), new_key() + ".0a1b2c3d.tmp"
    for key in (orphan, fresh_orphan, temp):
        storage().put(key, b"left behind", "text/plain")
    for key in (owned, orphan, temp):
        age(app, key, 2)
    caplog.set_level("INFO", logger="echo.attachments.tasks")
    assert sweep_orphans() == 2
    assert storage().exists(owned) and storage().exists(fresh_orphan)
    assert not storage().exists(orphan) and not storage().exists(temp)
    assert orphan in caplog.text


def test_the_sweep_works_on_s3_too(s3_app):
    import boto3

    with s3_app.app_context():
        settings = s3_app.config["ECHO"]
        key = new_key()
        storage().put(key, b"orphan", "text/plain")
        assert sweep_orphans() == 0  # too young
        time.sleep(2)
        assert sweep_orphans(min_age_seconds=1) == 1
        listed = boto3.client("s3", endpoint_url=settings.s3_endpoint_url).list_objects_v2(
            Bucket=settings.s3_bucket, Prefix="att/")
        assert "Contents" not in listed
