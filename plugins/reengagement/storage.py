"""Where the campaign's files go: one folder per campaign run, through Airflow's ObjectStoragePath."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from airflow.sdk import ObjectStoragePath


def default_base() -> str:
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return f"file://{Path(home).resolve()}/reengagement"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def run_folder(export_base: str | None, campaign: str, run_id: str) -> ObjectStoragePath:
    """``<base>/<campaign>/<run id>/``, created, owner-only when it is a local folder."""
    folder = ObjectStoragePath(export_base or default_base()) / slug(campaign) / slug(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    restrict(folder, directory=True)
    return folder


def restrict(path: ObjectStoragePath, *, directory: bool = False) -> None:
    """Owner-only permissions for local files: exports hold personal data."""
    if path.protocol in ("file", "local", ""):
        os.chmod(path.path, 0o700 if directory else 0o600)


def write_manifest(path: ObjectStoragePath, **facts: Any) -> None:
    """A small JSON beside a finished file: its presence means the file is complete."""
    manifest = path.parent / (path.name + ".json")
    with manifest.open("w") as out:
        json.dump(facts, out, indent=2, default=str)
    restrict(manifest)


def drop_manifest(path: ObjectStoragePath) -> None:
    """Mark a file incomplete before rewriting it, so a crash mid-write never leaves it looking complete."""
    manifest = path.parent / (path.name + ".json")
    if manifest.exists():
        manifest.unlink()


def read_manifest(path: ObjectStoragePath) -> dict[str, Any] | None:
    manifest = path.parent / (path.name + ".json")
    if not manifest.exists() or not path.exists():
        return None
    with manifest.open("r") as handle:
        data: dict[str, Any] = json.load(handle)
    return data
