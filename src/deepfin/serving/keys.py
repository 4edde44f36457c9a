"""API keys: printed once, stored only as salted scrypt hashes, compared in constant time.

A key reads `dfk_<id>_<secret>`: the id finds its entry without trying every hash, the secret
(32 random bytes) is what is hashed. scrypt makes a stolen keys file useless for guessing;
checking a presented key costs one scrypt the first time, after which the service remembers
the SHA-256 of keys it has accepted (in memory only) so a request pays microseconds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from deepfin.errors import ConfigError
from deepfin.runs.atomic import read_bytes, write_text

PREFIX = "dfk"
# scrypt's cost: 2^14 rounds of 8-block mixing, about 16 MiB and tens of milliseconds a check
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 2**20, "dklen": 32}


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, **SCRYPT)


@dataclass
class KeyStore:
    """The keys file: per name its id, salt, scrypt hash, creation time and revocation."""

    path: Path
    entries: dict[str, dict[str, str | None]] = field(default_factory=dict)
    _accepted: dict[str, str] = field(default_factory=dict, repr=False)  # sha256 -> name
    _read_at: float = 0.0  # the file's modification time when it was read

    @classmethod
    def open(cls, path: Path | str) -> KeyStore:
        """The keys file at `path` (empty if there is none yet)."""
        path = Path(path)
        if not path.exists():
            return cls(path)
        store = cls(path, cls._read(path), _read_at=path.stat().st_mtime)
        return store

    @staticmethod
    def _read(path: Path) -> dict[str, dict[str, str | None]]:
        try:
            entries = json.loads(read_bytes(path))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ConfigError(f"{path} is not a deepfin keys file ({error})") from None
        if not isinstance(entries, dict) or not all(
            isinstance(v, dict) and {"id", "salt", "hash"} <= set(v) for v in entries.values()
        ):
            raise ConfigError(f"{path} is not a deepfin keys file; create one with `keys add`")
        return entries

    def refresh(self) -> None:
        """Read the file again if it changed since (a key added or revoked by another process)."""
        try:
            changed = self.path.stat().st_mtime
        except FileNotFoundError:
            changed = 0.0
        if changed != self._read_at:
            self.entries = self._read(self.path) if changed else {}
            self._accepted, self._read_at = {}, changed

    def add(self, name: str) -> str:
        """A new key for `name`, returned once; only its hash is written."""
        if not name or not name.replace("-", "").replace("_", "").isalnum() or len(name) > 64:
            raise ConfigError(f"a key name is 1-64 letters, digits, - or _; got {name!r}")
        if name in self.entries and not self.entries[name].get("revoked"):
            raise ConfigError(f"a key named {name!r} exists; revoke it first or pick a new name")
        key_id, secret, salt = (
            secrets.token_hex(6),
            secrets.token_urlsafe(32),
            secrets.token_bytes(16),
        )
        self.entries[name] = {
            "id": key_id,
            "salt": salt.hex(),
            "hash": _hash(secret, salt).hex(),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "revoked": None,
        }
        self._save()
        return f"{PREFIX}_{key_id}_{secret}"

    def revoke(self, name: str) -> None:
        """Refuse `name`'s key from now on (the entry stays, marked with the time)."""
        if name not in self.entries:
            raise ConfigError(f"no key named {name!r}; the keys are {sorted(self.entries)}")
        self.entries[name]["revoked"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self._accepted = {k: v for k, v in self._accepted.items() if v != name}
        self._save()

    def active(self) -> list[str]:
        """The names whose keys are accepted."""
        return sorted(name for name, entry in self.entries.items() if not entry.get("revoked"))

    def check(self, presented: str | None) -> str | None:
        """The name of the key presented, or None when it is no live key."""
        if not presented:
            return None
        self.refresh()
        fingerprint = hashlib.sha256(presented.encode("utf-8", "replace")).hexdigest()
        if fingerprint in self._accepted:
            return self._accepted[fingerprint]
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            return None
        _, key_id, secret = parts
        for name, entry in self.entries.items():
            if entry.get("revoked") or not hmac.compare_digest(str(entry["id"]), key_id):
                continue
            expected = bytes.fromhex(str(entry["hash"]))
            if hmac.compare_digest(_hash(secret, bytes.fromhex(str(entry["salt"]))), expected):
                self._accepted[fingerprint] = name
                return name
        return None

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.path, json.dumps(self.entries, indent=2) + "\n")
        self.path.chmod(0o600)  # hashes only, but nobody else needs to read them
        self._read_at = self.path.stat().st_mtime
