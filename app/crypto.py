"""Encryption of field values at rest: AES-256-GCM from `cryptography`, one keyring per installation.

A value is stored as `enc1:<key id>:<base64 of nonce + ciphertext + tag>`. The authenticated data is
the value's place — table, field and record id — so a ciphertext copied to another record or field
does not decrypt. Several keys may be active: the first encrypts, all decrypt (`crm keys rotate`
moves every value to the first). A key id is the start of the key's SHA-256, never the key.

A searchable field also stores a blind index: an HMAC of the normalised value under a key derived
from each encryption key, so that equality can be tested without decrypting the table.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "enc1"
FILE_MAGIC = b"CRMFILE1:"  # an encrypted attachment: magic, key id, ':', nonce, ciphertext + tag
KEYS_SETTING = "CRM_ENCRYPTION_KEYS"
KEY_FILE = "encryption.keys"


class KeyProblem(Exception):
    """The keys cannot be used: missing, malformed, or not the ones the data was encrypted with."""


class DecryptFailed(Exception):
    """A stored value does not decrypt: its key is missing, or it was altered or moved."""


@dataclass(frozen=True)
class Key:
    id: str
    secret: bytes

    @classmethod
    def from_text(cls, text: str, where: str) -> Key:
        """Return the key written as URL-safe base64 of 32 bytes; KeyProblem naming `where` otherwise."""
        try:
            secret = base64.urlsafe_b64decode(text.strip().encode("ascii") + b"=" * (-len(text.strip()) % 4))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            secret = b""
        if len(secret) != 32:
            raise KeyProblem(f"{where}: one of the keys is not a key (expected 32 bytes in URL-safe base64; "
                             "make one with `crm keys new`)")  # never echo a secret, even a malformed one
        return cls(hashlib.sha256(secret).hexdigest()[:8], secret)

    def text(self) -> str:
        return base64.urlsafe_b64encode(self.secret).decode("ascii").rstrip("=")

    def index_key(self) -> bytes:
        """Return the HMAC key of blind indexes, derived from this key (never the key itself)."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"crm blind index").derive(self.secret)


def new_key() -> Key:
    """Return a fresh random key."""
    secret = secrets.token_bytes(32)
    return Key(hashlib.sha256(secret).hexdigest()[:8], secret)


@dataclass(frozen=True)
class Keyring:
    """The active keys (the first encrypts) and where they came from, for messages."""

    keys: tuple[Key, ...]
    source: str

    @property
    def primary(self) -> Key:
        return self.keys[0]

    def key(self, key_id: str) -> Key | None:
        return next((k for k in self.keys if k.id == key_id), None)

    def encrypt(self, plaintext: str, place: str) -> str:
        """Return the stored form of `plaintext` for `place` (e.g. 'product.formula#12')."""
        nonce = os.urandom(12)
        sealed = AESGCM(self.primary.secret).encrypt(nonce, plaintext.encode("utf-8"), place.encode("utf-8"))
        return f"{PREFIX}:{self.primary.id}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, stored: str, place: str) -> str:
        """Return the plaintext of a stored value at `place`; DecryptFailed saying why otherwise."""
        prefix, key_id, body = (stored.split(":", 2) + ["", ""])[:3]
        if prefix != PREFIX:
            raise DecryptFailed(f"{place}: the stored value is not encrypted (it does not start with {PREFIX}:)")
        key = self.key(key_id)
        if key is None:
            raise DecryptFailed(f"{place}: encrypted with key {key_id}, which is not among the keys in {self.source}; "
                                f"add that key back to {KEYS_SETTING}")
        try:
            raw = base64.b64decode(body, validate=True)
            return AESGCM(key.secret).decrypt(raw[:12], raw[12:], place.encode("utf-8")).decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError):
            raise DecryptFailed(f"{place}: the stored value does not decrypt — it was altered, or copied from "
                                "another record or field") from None

    def seal_bytes(self, data: bytes, place: str) -> bytes:
        """Return the stored form of a file's bytes, bound to `place` (e.g. 'file:<stored name>')."""
        nonce = os.urandom(12)
        sealed = AESGCM(self.primary.secret).encrypt(nonce, data, place.encode("utf-8"))
        return FILE_MAGIC + self.primary.id.encode("ascii") + b":" + nonce + sealed

    def open_bytes(self, stored: bytes, place: str) -> bytes:
        """Return a file's bytes from their stored form; DecryptFailed saying why otherwise."""
        if not stored.startswith(FILE_MAGIC):
            raise DecryptFailed(f"{place}: the file is not encrypted")
        key_id, _, rest = stored[len(FILE_MAGIC):].partition(b":")
        key = self.key(key_id.decode("ascii", "replace"))
        if key is None:
            raise DecryptFailed(f"{place}: encrypted with key {key_id.decode('ascii', 'replace')}, which is not among "
                                f"the keys in {self.source}; add that key back to {KEYS_SETTING}")
        try:
            return AESGCM(key.secret).decrypt(rest[:12], rest[12:], place.encode("utf-8"))
        except (InvalidTag, ValueError):
            raise DecryptFailed(f"{place}: the file does not decrypt — it was altered, or belongs to another "
                                "record") from None

    def blind_index(self, value: str, field: str, key: Key | None = None) -> str:
        """Return the blind index of `value` in `field` ('table.field') under `key` (default: the first)."""
        message = f"{field}\0{normalise(value)}".encode()
        return hmac.new((key or self.primary).index_key(), message, hashlib.sha256).hexdigest()[:32]

    def blind_indexes(self, value: str, field: str) -> list[str]:
        """Return the index of `value` under every key, so a search finds rows not yet rotated."""
        return [self.blind_index(value, field, key) for key in self.keys]


def normalise(value: str) -> str:
    """Return the form a blind index is computed from: full-width forms folded (ＡＢ１２ is AB12),
    trimmed, case-folded, inner spaces squeezed."""
    return " ".join(unicodedata.normalize("NFKC", str(value)).split()).casefold()


def is_encrypted(stored: object) -> bool:
    return isinstance(stored, str) and stored.startswith(PREFIX + ":")


def file_key_id(stored: bytes) -> str | None:
    """Return the id of the key an encrypted file was sealed with; None for a file that is not encrypted."""
    if not stored.startswith(FILE_MAGIC):
        return None
    return stored[len(FILE_MAGIC):].partition(b":")[0].decode("ascii", "replace")


def key_id_of(stored: str) -> str:
    """Return the id of the key a stored value was encrypted with."""
    return stored.split(":", 2)[1]


def load_keyring(setting: str | None, instance_dir: Path, create: bool) -> Keyring:
    """Return the keys from CRM_ENCRYPTION_KEYS (comma-separated) or from the instance key file.

    With `create`, a missing key file is made with one new key, readable by its owner only.
    """
    if setting:
        keys = tuple(Key.from_text(part, KEYS_SETTING) for part in setting.split(",") if part.strip())
        return checked(Keyring(keys, KEYS_SETTING))
    path = instance_dir / KEY_FILE
    if not path.exists():
        if not create:
            raise KeyProblem(f"no encryption keys: set {KEYS_SETTING} or keep the key file {path}")
        create_key_file(path)
    refuse_if_readable_by_others(path)
    lines = [line for line in path.read_text(encoding="ascii").splitlines()
             if line.strip() and not line.startswith("#")]
    return checked(Keyring(tuple(Key.from_text(line, str(path)) for line in lines),
                           f"{path} ({KEYS_SETTING} is not set)"))


def keyring_for(settings: dict[str, object]) -> Keyring:
    """Return the keyring of an installation's settings (creating the instance key file if needed)."""
    return load_keyring(str(settings.get("CRM_ENCRYPTION_KEYS") or "") or None,
                        Path(str(settings["CRM_INSTANCE_DIR"])), create=True)


def checked(ring: Keyring) -> Keyring:
    if not ring.keys:
        raise KeyProblem(f"{ring.source}: no keys in it")
    return ring


def create_key_file(path: Path) -> None:
    """Create the key file with one new key, unless another process starting at the same moment
    already did: the first file to appear wins, so that every process encrypts with the same key."""
    temp = write_temp_key_file(path, [new_key()])
    try:
        os.link(temp, path)  # atomic, and fails when the file exists: never two different keys
    except FileExistsError:
        pass
    finally:
        os.unlink(temp)


def write_key_file(path: Path, keys: list[Key]) -> None:
    """Replace the key file with `keys` (first encrypts), readable and writable by the owner only."""
    os.replace(write_temp_key_file(path, keys), path)


def write_temp_key_file(path: Path, keys: list[Key]) -> Path:
    """Write `keys` to a new file of its own beside `path` (mode 600); return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.new")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write("# Encryption keys of the CRM: the first encrypts, all decrypt. Back this file up apart\n"
                     "# from the database; without it the encrypted fields cannot be read.\n")
        handle.writelines(f"{key.text()}\n" for key in keys)
    return temp


def refuse_if_readable_by_others(path: Path) -> None:
    """Raise KeyProblem when the key file can be read or changed by other users (as ssh does)."""
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise KeyProblem(f"{path} can be read or changed by other users (mode {path.stat().st_mode & 0o777:o}); "
                         f"run: chmod 600 {path}")
