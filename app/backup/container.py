"""The backup file: a gzip'd tar, encrypted in chunks with AES-256-GCM under a key derived from the
installation's first encryption key.

    CRMBACKUP1\\n
    {"key": "<key id>", "nonce": "<base64 of 8 bytes>"}\\n
    then chunks: 4-byte big-endian length, ciphertext + tag

Each chunk's nonce is the file's 8 random bytes and the chunk's number; its authenticated data is
the number and whether it is the last, so chunks cannot be reordered, dropped or cut off unnoticed.
"""
from __future__ import annotations

import base64
import json
import os
import struct
from collections.abc import Iterator
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.crypto import KEYS_SETTING, Key, Keyring

MAGIC = b"CRMBACKUP1\n"
CHUNK = 1024 * 1024


class BackupUnreadable(Exception):
    """The file is not a backup, was altered or cut off, or its key is not among the keys."""


def backup_key(key: Key) -> bytes:
    """Return the key that encrypts backups, derived from an encryption key (never the key itself)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"crm backup").derive(key.secret)


def aad(index: int, last: bool) -> bytes:
    return f"{index}:{int(last)}".encode("ascii")


def write_encrypted(source: IO[bytes], target: IO[bytes], ring: Keyring) -> None:
    """Encrypt everything `source` holds into `target` under the first key."""
    nonce = os.urandom(8)
    cipher = AESGCM(backup_key(ring.primary))
    target.write(MAGIC)
    target.write(json.dumps({"key": ring.primary.id, "nonce": base64.b64encode(nonce).decode()}).encode() + b"\n")
    index, chunk = 0, source.read(CHUNK)
    while True:
        following = source.read(CHUNK)
        last = not following
        sealed = cipher.encrypt(nonce + struct.pack(">I", index), chunk, aad(index, last))
        target.write(struct.pack(">I", len(sealed)) + sealed)
        if last:
            return
        index, chunk = index + 1, following


def read_encrypted(source: IO[bytes], ring: Keyring, name: str) -> Iterator[bytes]:
    """Yield the decrypted chunks of a backup file; BackupUnreadable saying why it cannot be read."""
    if source.read(len(MAGIC)) != MAGIC:
        raise BackupUnreadable(f"{name} is not a backup of this panel")
    try:
        header = json.loads(source.readline())
        key, nonce = ring.key(header["key"]), base64.b64decode(header["nonce"])
    except (ValueError, KeyError):
        raise BackupUnreadable(f"{name}: the backup's header is damaged") from None
    if key is None:
        raise BackupUnreadable(f"{name} was encrypted with key {header['key']}, which is not among the keys in "
                               f"{ring.source}; add it to {KEYS_SETTING} to restore this backup")
    cipher = AESGCM(backup_key(key))
    index = 0
    while True:
        size = source.read(4)
        if len(size) < 4:
            raise BackupUnreadable(f"{name} is cut off: it ends before its last part")
        sealed = source.read(struct.unpack(">I", size)[0])
        for last in (False, True):
            try:
                chunk = cipher.decrypt(nonce + struct.pack(">I", index), sealed, aad(index, last))
                break
            except InvalidTag:
                chunk = None
        if chunk is None:
            raise BackupUnreadable(f"{name}: part {index + 1} does not decrypt — the file was altered or damaged")
        yield chunk
        if last:
            if source.read(1):
                raise BackupUnreadable(f"{name} has data after its last part — the file was altered")
            return
        index += 1
