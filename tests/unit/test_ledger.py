"""The clicker ledger: a saving only, so anything doubtful about it reads as empty."""

from __future__ import annotations

from airflow.sdk import ObjectStoragePath
from reengagement.ledger import FILE_NAME, ClickerLedger, email_key


def test_keys_ignore_case_and_spaces_and_hide_the_address():
    assert email_key(" Ann@Example.com ") == email_key("ann@example.com")
    assert email_key("ann@example.com") != email_key("bob@example.com")
    assert "ann" not in email_key("ann@example.com") and len(email_key("x@y.z")) == 32


def test_what_is_saved_for_a_list_and_run_is_loaded_for_them_only(tmp_path):
    folder = ObjectStoragePath(f"file://{tmp_path}")
    entries = {email_key("ann@example.com"): "101", email_key("bob@example.com"): "102"}
    ClickerLedger(folder, "7", "run").save(entries)
    assert ClickerLedger(folder, "7", "run").load() == entries
    assert ClickerLedger(folder, "8", "run").load() == {}
    assert ClickerLedger(folder, "7", "another run").load() == {}


def test_a_save_cut_short_before_its_manifest_reads_as_empty(tmp_path):
    folder = ObjectStoragePath(f"file://{tmp_path}")
    ledger = ClickerLedger(folder, "7", "run")
    ledger.save({email_key("ann@example.com"): "101"})
    manifest = tmp_path / (FILE_NAME + ".json")
    (tmp_path / FILE_NAME).write_text("email_key,contact_id,run_id\n")  # a rewrite that stopped after its header
    manifest.unlink()  # what save() does first
    assert ledger.load() == {}
    assert ClickerLedger(ObjectStoragePath(f"file://{tmp_path}/nowhere"), "7", "run").load() == {}
