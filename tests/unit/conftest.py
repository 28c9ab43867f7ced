"""Fixtures the unit tests share."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from airflow.sdk import ObjectStoragePath


@pytest.fixture
def memory() -> Iterator[ObjectStoragePath]:
    """A fresh folder on fsspec's in-memory store, attached as a provider attaches S3 or GCS."""
    import fsspec
    from airflow.sdk.io import attach

    attach("memory", fs=fsspec.filesystem("memory"))
    root = ObjectStoragePath(f"memory://unit-tests/{uuid.uuid4().hex}")
    yield root
    if root.exists():
        root.rmdir(recursive=True)
