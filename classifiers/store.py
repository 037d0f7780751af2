"""Which model the daemon uses: admin-trained versions, the CURRENT pointer and history.

Layout under `<state_dir>/models/` (each version directory as classifiers.files writes it):

    <version>/model.{skops,npz,json}
    CURRENT                 the version the daemon uses; replaced atomically
    history.jsonl           every promotion and rollback, newest last

The shipped model is classifiers/model_files/model.{skops,npz,json} in the package.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from classifiers.files import (
    INFO_FILE,
    LoadedModel,
    LoadedPredictor,
    ModelError,
    ModelInfo,
    ModelNotFoundError,
    atomic_write,
    fsync_dir,
    private_dir,
    read_compact,
    read_model,
    read_predictor,
    write_model,
)

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


def shipped_dir() -> Path:
    """Where the model shipped inside the package lives."""
    return Path(str(resources.files("classifiers") / "model_files"))


def new_version(trained_at: datetime) -> str:
    """A version name: UTC training time plus a random suffix (sorts by time)."""
    return f"{trained_at.astimezone(UTC):%Y%m%d-%H%M%S-%f}-{secrets.token_hex(2)}"


class ModelStore:
    """Admin-trained model versions in `<state_dir>/models`, and which one is current."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "models"
        self.pointer = self.root / "CURRENT"
        self.history_file = self.root / "history.jsonl"

    def save(self, pipeline: Pipeline, info: ModelInfo) -> ModelInfo:
        """Save a new version (model.skops, model.npz, model.json; not made current);
        returns its metadata. Raises OSError."""
        private_dir(self.root)
        incoming = self.root / f".incoming-{secrets.token_hex(4)}"
        try:
            saved = write_model(incoming, pipeline, info)
            incoming.rename(self.root / info.version)  # atomic: a version appears whole
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        return saved

    def versions(self) -> list[tuple[str, ModelInfo | None]]:
        """Every saved version, oldest first, with its metadata (None when unreadable)."""
        if not self.root.is_dir():
            return []
        found: list[tuple[str, ModelInfo | None]] = []
        for path in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if path.name.startswith("."):
                continue
            try:
                found.append(
                    (path.name, ModelInfo.model_validate_json((path / INFO_FILE).read_bytes()))
                )
            except (OSError, ValidationError):
                found.append((path.name, None))
        return found

    def current(self) -> str | None:
        """The current version's name, or None when the shipped model is in use."""
        try:
            name = self.pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def pointer_state(self) -> tuple[int, int] | None:
        """(mtime in ns, inode) of CURRENT, None when absent: changes on every promotion."""
        try:
            stat = self.pointer.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_ino

    def directory(self, version: str) -> Path:
        """The directory of a saved version. Raises ModelNotFoundError."""
        if not version or "/" in version or version.startswith("."):
            raise ModelNotFoundError(f"no model version {version!r}")
        directory = self.root / version
        if not directory.is_dir():
            raise ModelNotFoundError(f"no model version {version!r} in {self.root}")
        return directory

    def load(self, version: str) -> LoadedModel:
        """Verify and load one saved version's pipeline. Raises ModelError (see read_model)."""
        return read_model(self.directory(version))

    def load_predictor(self, version: str) -> LoadedPredictor:
        """Verify and load one saved version as the daemon uses it (see read_predictor).
        Raises ModelError."""
        return read_predictor(self.directory(version))

    def verify(self, version: str) -> ModelInfo:
        """Check that both forms of a saved version load (the pipeline, and the compact
        model when one is recorded); returns its metadata. Raises ModelError."""
        loaded = self.load(version)
        if loaded.info.compact_sha256 is not None:
            read_compact(self.directory(version))
        return loaded.info

    def history(self) -> list[dict[str, Any]]:
        """Every promotion and rollback, oldest first."""
        try:
            lines = self.history_file.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def _record(self, action: str, version: str | None, previous: str | None) -> None:
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "action": action,
            "version": version,
            "previous": previous,
        }
        fd = os.open(self.history_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def promote(self, version: str) -> ModelInfo:
        """Make `version` current (after verifying it loads); returns its metadata.

        Raises ModelError when it cannot be loaded: a broken model is never made current.
        """
        info = self.verify(version)
        previous = self.current()
        atomic_write(self.pointer, f"{version}\n".encode())
        self._record("promote", version, previous)
        return info

    def rollback(self) -> str | None:
        """Return to the version current before the last promotion; returns its name, or
        None when that is the shipped model (CURRENT is removed).

        Raises ModelError when there is nothing to roll back to or that version is broken.
        """
        stack: list[str] = []
        for entry in self.history():
            if entry.get("action") == "promote" and entry.get("version"):
                stack.append(str(entry["version"]))
            elif entry.get("action") == "rollback" and stack:
                stack.pop()
        current = self.current()
        if not stack or current is None:
            raise ModelError("nothing to roll back: no promoted version is current")
        stack.pop()
        target = stack[-1] if stack else None
        if target is None:
            self.pointer.unlink(missing_ok=True)
            fsync_dir(self.root)
        else:
            self.verify(target)
            atomic_write(self.pointer, f"{target}\n".encode())
        self._record("rollback", target, current)
        return target
