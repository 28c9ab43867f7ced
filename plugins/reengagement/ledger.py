"""The CTA clickers list 1 already holds, kept beside the run's exports so later reads skip their look-ups.

Every read of list 1 re-reads every click (a click HubSpot shows late must still count), but a clicker
looked up and added once need not be looked up again: this ledger keeps a 128-bit hash of each such
clicker's address with the contact id, 24 bytes a clicker on disk and in memory, and no address. It is
only a saving: a missing, partial or foreign ledger (another list or run, a row count that does not match
its manifest) is ignored, and every clicker is looked up again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .storage import drop_manifest, read_manifest, restrict, write_manifest

FILE_NAME = "confirmed_clickers.npy"
ENTRY = np.dtype([("email_key", "S16"), ("contact_id", "<i8")])


def email_key(email: str) -> bytes:
    """128-bit hash of a normalised address: collisions are out of reach, the address is not kept."""
    return hashlib.blake2b(email.strip().lower().encode(), digest_size=16).digest()


@dataclass(frozen=True)
class Clickers:
    """Clickers by address hash, sorted by it: ``keys`` (``S16``) and their ``contact_ids`` (``int64``)."""

    keys: np.ndarray
    contact_ids: np.ndarray

    @classmethod
    def empty(cls) -> Clickers:
        return cls(np.empty(0, dtype="S16"), np.empty(0, dtype=np.int64))

    @classmethod
    def of(cls, keys: np.ndarray, contact_ids: np.ndarray) -> Clickers:
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], contact_ids[order])

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: bytes) -> bool:
        # Compared as numpy S16, as the arrays hold them (a key ending in zero bytes reads back shorter).
        probe = np.array([key], dtype="S16")
        at = int(np.searchsorted(self.keys, probe[0]))
        return at < len(self.keys) and bool(self.keys[at] == probe[0])

    def among(self, keys: np.ndarray) -> Clickers:
        """Those of these clickers whose key is in ``keys``."""
        kept = np.isin(self.keys, keys)
        return Clickers(self.keys[kept], self.contact_ids[kept])

    def plus(self, other: Clickers) -> Clickers:
        return Clickers.of(
            np.concatenate([self.keys, other.keys]), np.concatenate([self.contact_ids, other.contact_ids])
        )


class ClickerLedger:
    """The clickers known to be in list ``list_id``, for one DAG run.

    :param folder: the run's folder (``storage.run_folder``).
    :param list_id: list 1; a ledger written for another list is not used.
    :param run_id: the DAG run; a ledger of another run is not used.
    """

    def __init__(self, folder: Any, list_id: str, run_id: str) -> None:
        self.path = folder / FILE_NAME
        self.list_id = str(list_id)
        self.run_id = str(run_id)

    def load(self) -> Clickers:
        manifest = read_manifest(self.path)
        if (
            manifest is None
            or str(manifest.get("list_id")) != self.list_id
            or str(manifest.get("run_id")) != self.run_id
        ):
            return Clickers.empty()
        try:
            with self.path.open("rb") as handle:
                entries = np.load(handle, allow_pickle=False)
        except (OSError, ValueError):
            return Clickers.empty()
        if entries.dtype != ENTRY or len(entries) != int(manifest.get("rows", -1)):
            return Clickers.empty()
        return Clickers.of(entries["email_key"], entries["contact_id"])

    def save(self, clickers: Clickers) -> None:
        """Drop the manifest, write the whole ledger, write the manifest: a crash midway leaves it ignored."""
        drop_manifest(self.path)
        entries = np.empty(len(clickers), dtype=ENTRY)
        entries["email_key"], entries["contact_id"] = clickers.keys, clickers.contact_ids
        with self.path.open("wb") as out:
            restrict(self.path)
            np.save(out, entries, allow_pickle=False)
        write_manifest(self.path, rows=len(entries), list_id=self.list_id, run_id=self.run_id)
