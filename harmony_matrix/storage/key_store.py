"""The private keys of open ballot rounds, kept in files outside the database.

A round's private key must outlive restarts until the round is counted, and must then
be gone for good, wherever copies of the database (a write-ahead log, an archive, a
backup) survive. So it never enters the database: one small file per open round, named
by a fingerprint of the round's public key, holding the private key wrapped under the
secret key (``voting/sealing.py``). Destroying it overwrites the file, syncs it and
unlinks it. What the file system keeps of deleted blocks is below what Harmony controls
(docs/secret-ballot.md).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from harmony_matrix.voting.sealing import RoundKeys, unwrap_private_key, wrap_private_key


class KeyFileMissing(LookupError):
    """The round's key file is not in this store (another machine, or lost)."""


class RoundKeyStore:
    def __init__(self, path: Path | str, secret_key: bytes) -> None:
        self.path = Path(path)
        self._secret_key = secret_key

    def _file(self, keys: RoundKeys) -> Path:
        return self.path / f"{keys.fingerprint}.key"

    def save(self, keys: RoundKeys) -> None:
        """Write the key durably (file and folder synced) before the round exists."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self._file(keys)
        partial = target.with_suffix(".partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(descriptor, wrap_private_key(keys, self._secret_key))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        partial.replace(target)
        self._sync_folder()

    def load(self, public: bytes) -> RoundKeys:
        file = self._file(RoundKeys(public))
        try:
            wrapped = file.read_bytes()
        except FileNotFoundError as error:
            raise KeyFileMissing(str(file)) from error
        return unwrap_private_key(public, wrapped, self._secret_key)

    def destroy(self, public: bytes) -> None:
        """Overwrite, sync and unlink the round's key file; nothing to do if it is gone."""
        self._shred(self._file(RoundKeys(public)))

    def sweep(self, keep: set[bytes], older_than_seconds: float = 3600.0) -> int:
        """Destroy key files of rounds that are not open (a crash between writing the key
        and opening the round, or between counting and destroying). Young files are
        left alone: their round may be opening right now. Returns how many went."""
        if not self.path.is_dir():
            return 0
        kept = {self._file(RoundKeys(public)).name for public in keep}
        cutoff = time.time() - older_than_seconds
        destroyed = 0
        for file in self.path.iterdir():
            if file.name in kept or file.stat().st_mtime > cutoff:
                continue
            self._shred(file)
            destroyed += 1
        return destroyed

    def _shred(self, file: Path) -> None:
        try:
            descriptor = os.open(file, os.O_WRONLY)
        except FileNotFoundError:
            return
        try:
            os.write(descriptor, b"\0" * os.fstat(descriptor).st_size)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        file.unlink()
        self._sync_folder()

    def _sync_folder(self) -> None:
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
