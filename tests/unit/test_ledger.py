"""The clicker ledger: a saving only, so anything doubtful about it reads as empty."""

from __future__ import annotations

import numpy as np
from airflow.sdk import ObjectStoragePath
from reengagement.ledger import FILE_NAME, ClickerLedger, Clickers, email_key


def clickers(*pairs: tuple[str, int]) -> Clickers:
    return Clickers.of(
        np.array([email_key(e) for e, _ in pairs], dtype="S16"), np.array([i for _, i in pairs], dtype=np.int64)
    )


def test_keys_ignore_case_and_spaces_and_hide_the_address():
    assert email_key(" Ann@Example.com ") == email_key("ann@example.com")
    assert email_key("ann@example.com") != email_key("bob@example.com")
    assert b"ann" not in email_key("ann@example.com") and len(email_key("x@y.z")) == 16


def test_membership_holds_for_keys_that_end_in_zero_bytes():
    keys = [bytes(15) + b"\x01", b"\x07" + bytes(15), b"\xff" * 8 + bytes(8)]
    known = Clickers.of(np.array(keys, dtype="S16"), np.arange(3, dtype=np.int64))
    assert all(key in known for key in keys)
    assert bytes(16) not in known and b"\x07" + bytes(14) + b"\x01" not in known


def test_what_is_saved_for_a_list_and_run_is_loaded_for_them_only(tmp_path):
    folder = ObjectStoragePath(f"file://{tmp_path}")
    saved = clickers(("ann@example.com", 101), ("bob@example.com", 102))
    ClickerLedger(folder, "7", "run").save(saved)
    loaded = ClickerLedger(folder, "7", "run").load()
    assert loaded.keys.tolist() == saved.keys.tolist() and loaded.contact_ids.tolist() == saved.contact_ids.tolist()
    assert len(ClickerLedger(folder, "8", "run").load()) == 0
    assert len(ClickerLedger(folder, "7", "another run").load()) == 0
    assert b"example" not in (tmp_path / FILE_NAME).read_bytes()


def test_a_save_cut_short_before_its_manifest_reads_as_empty(tmp_path):
    folder = ObjectStoragePath(f"file://{tmp_path}")
    ledger = ClickerLedger(folder, "7", "run")
    ledger.save(clickers(("ann@example.com", 101)))
    (tmp_path / FILE_NAME).write_bytes(b"\x93NUMPY")  # a rewrite that stopped early
    assert len(ledger.load()) == 0
    (tmp_path / (FILE_NAME + ".json")).unlink()  # what save() does first
    assert len(ledger.load()) == 0
    assert len(ClickerLedger(ObjectStoragePath(f"file://{tmp_path}/nowhere"), "7", "run").load()) == 0


def test_among_and_plus_keep_keys_and_ids_together():
    known = clickers(("ann@example.com", 101), ("bob@example.com", 102), ("cy@example.com", 103))
    still = known.among(np.array([email_key("cy@example.com"), email_key("ann@example.com")], dtype="S16"))
    assert sorted(still.contact_ids.tolist()) == [101, 103]
    both = still.plus(clickers(("dee@example.com", 104)))
    assert sorted(both.contact_ids.tolist()) == [101, 103, 104] and email_key("dee@example.com") in both
