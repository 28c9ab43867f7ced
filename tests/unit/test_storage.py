"""Run folders and manifests: one owner-only folder per campaign run, a manifest only beside a complete file."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath
from reengagement import storage


def mode(path: ObjectStoragePath) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("campaign_2026-Q4", "campaign_2026-Q4"),
        ("manual__2026-12-04T14:00:00+00:00", "manual__2026-12-04T14_00_00_00_00"),
        ("a/../../etc", "a_.._.._etc"),
        ("  spaced  out  ", "spaced_out"),
        ("ünï", "n"),
        ("///", "run"),
        ("", "run"),
    ],
)
def test_slug_keeps_only_safe_characters_and_is_never_empty(text, expected):
    assert storage.slug(text) == expected


def test_slug_never_leaves_a_path_separator():
    assert "/" not in storage.slug("../../x/y") and "\\" not in storage.slug("a\\b")


def test_the_default_base_is_under_airflow_home(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home" / ".." / "home"))
    assert storage.default_base() == f"file://{(tmp_path / 'home').resolve()}/reengagement"
    monkeypatch.delenv("AIRFLOW_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert storage.default_base() == f"file://{(tmp_path / 'user' / 'airflow').resolve()}/reengagement"


def test_run_folder_is_created_per_campaign_and_run_owner_only(tmp_path):
    base = f"file://{tmp_path}/exports"
    folder = storage.run_folder(base, "Q4 campaign", "manual__2026-12-04T14:00:00+00:00")
    assert folder == ObjectStoragePath(base) / "Q4_campaign" / "manual__2026-12-04T14_00_00_00_00"
    assert folder.is_dir() and mode(folder) == 0o700
    assert Path(folder.path).parent.parent == tmp_path / "exports"


def test_run_folder_again_keeps_what_is_there(tmp_path):
    base = f"file://{tmp_path}"
    folder = storage.run_folder(base, "c", "r")
    (folder / "kept.csv").write_text("a\n")
    assert storage.run_folder(base, "c", "r") == folder
    assert (folder / "kept.csv").read_text() == "a\n"
    assert storage.run_folder(base, "c", "other") != folder


def test_run_folder_without_a_base_goes_to_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    folder = storage.run_folder(None, "c", "r")
    assert Path(folder.path) == tmp_path / "reengagement" / "c" / "r" and folder.is_dir()
    assert storage.run_folder("", "c", "r") == folder


def test_run_folder_works_on_an_object_store(memory):
    folder = storage.run_folder(str(memory), "c", "r")
    assert folder == memory / "c" / "r"
    (folder / "x.csv").write_text("a\n")
    assert [p.name for p in folder.iterdir()] == ["x.csv"]


def test_restrict_makes_local_files_and_folders_owner_only(tmp_path):
    (tmp_path / "d").mkdir(mode=0o777)
    (tmp_path / "f").write_text("personal data")
    (tmp_path / "f").chmod(0o666)
    storage.restrict(ObjectStoragePath(f"file://{tmp_path}/d"), directory=True)
    storage.restrict(ObjectStoragePath(f"file://{tmp_path}/f"))
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600


def test_restrict_leaves_object_stores_alone(memory):
    path = memory / "f.csv"
    path.write_text("a")
    storage.restrict(path)
    storage.restrict(memory, directory=True)
    assert path.read_text() == "a"


def test_a_manifest_is_written_beside_the_file_and_read_back(tmp_path):
    path = ObjectStoragePath(f"file://{tmp_path}") / "opt_out.csv"
    path.write_text("contact_id,email,run_id\n")
    when = dt.datetime(2026, 12, 4, 14, 0, tzinfo=dt.UTC)
    storage.write_manifest(path, rows=3, finished=when, columns=["a", "b"])
    manifest = tmp_path / "opt_out.csv.json"
    assert json.loads(manifest.read_text()) == {"rows": 3, "finished": str(when), "columns": ["a", "b"]}
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o600
    assert storage.read_manifest(path) == {"rows": 3, "finished": str(when), "columns": ["a", "b"]}


def test_a_file_without_its_manifest_or_a_manifest_without_its_file_reads_as_incomplete(tmp_path):
    path = ObjectStoragePath(f"file://{tmp_path}") / "opt_out.csv"
    assert storage.read_manifest(path) is None
    path.write_text("x\n")
    assert storage.read_manifest(path) is None
    storage.write_manifest(path, rows=1)
    path.unlink()
    assert storage.read_manifest(path) is None


def test_dropping_the_manifest_marks_the_file_incomplete(tmp_path):
    path = ObjectStoragePath(f"file://{tmp_path}") / "opt_out.csv"
    storage.drop_manifest(path)  # nothing to drop yet: no error
    path.write_text("x\n")
    storage.write_manifest(path, rows=1)
    storage.drop_manifest(path)
    assert storage.read_manifest(path) is None and not (tmp_path / "opt_out.csv.json").exists()
    assert path.read_text() == "x\n"
    storage.drop_manifest(path)


def test_manifests_work_on_an_object_store(memory):
    path = memory / "run" / "opt_out.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x\n")
    storage.write_manifest(path, rows=1)
    assert storage.read_manifest(path) == {"rows": 1}
    storage.drop_manifest(path)
    assert storage.read_manifest(path) is None
