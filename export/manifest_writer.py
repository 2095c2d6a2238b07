"""Adds or replaces one model's entry in models_onnx/manifest.json, safely for concurrent exports."""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from subtone.service.models.registry import MANIFEST_NAME, sha256_file


@contextmanager
def _locked(models_dir: Path) -> Iterator[None]:
    lock_path = models_dir / ".manifest.lock"
    with lock_path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_entry(models_dir: Path, name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Write `entry` under `name`, filling sha256 for every file in entry["files"]."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    full = dict(entry)
    full["sha256"] = {role: sha256_file(models_dir / rel) for role, rel in entry["files"].items()}
    with _locked(models_dir):
        path = models_dir / MANIFEST_NAME
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        data.setdefault("models", {})[name] = full
        data["models"] = dict(sorted(data["models"].items()))
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    return full
