"""The CTA clickers list 1 already holds, kept beside the run's exports so later reads skip their look-ups.

Every read of list 1 re-reads every click (a click HubSpot shows late must still count), but a clicker
looked up and added once need not be looked up again: this ledger maps a hash of the clicker's address
to the contact id. It holds no address. It is only a saving: a missing, partial or foreign ledger
(another list id, a row count that does not match its manifest) is ignored, and every clicker is
looked up again.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

from .storage import drop_manifest, read_manifest, restrict, write_manifest

FILE_NAME = "confirmed_clickers.csv"
COLUMNS = ["email_key", "contact_id", "run_id"]


def email_key(email: str) -> str:
    """128-bit hash of a normalised address: collisions are out of reach, the address is not kept."""
    return hashlib.blake2b(email.strip().lower().encode(), digest_size=16).hexdigest()


class ClickerLedger:
    """``email_key -> contact id`` of the clickers known to be in list ``list_id``.

    :param folder: the run's folder (``storage.run_folder``).
    :param list_id: list 1; a ledger written for another list is not used.
    :param run_id: the DAG run, written on every row like every other file of the run.
    """

    def __init__(self, folder: Any, list_id: str, run_id: str) -> None:
        self.path = folder / FILE_NAME
        self.list_id = str(list_id)
        self.run_id = str(run_id)

    def load(self) -> dict[str, str]:
        manifest = read_manifest(self.path)
        if manifest is None or str(manifest.get("list_id")) != self.list_id:
            return {}
        with self.path.open("r") as handle:
            frame = pd.read_csv(handle, dtype="string", keep_default_na=False)
        if (list(frame.columns) != COLUMNS or len(frame) != int(manifest.get("rows", -1))
                or not (frame["run_id"] == self.run_id).all()):
            return {}
        return dict(zip(frame["email_key"], frame["contact_id"], strict=True))

    def save(self, entries: dict[str, str]) -> None:
        """Drop the manifest, write the whole ledger, write the manifest: a crash midway leaves it ignored."""
        drop_manifest(self.path)
        frame = pd.DataFrame({"email_key": list(entries), "contact_id": list(entries.values()),
                              "run_id": self.run_id}, columns=COLUMNS)
        with self.path.open("w") as out:
            restrict(self.path)
            frame.to_csv(out, index=False)
        write_manifest(self.path, rows=len(frame), list_id=self.list_id, run_id=self.run_id)
