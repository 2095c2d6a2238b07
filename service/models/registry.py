"""Reads models_onnx/manifest.json: the only way the runtime finds a model."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from subtone.service.errors import SubtoneError

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class ModelEntry:
    """One manifest entry; `files` maps a role (e.g. "encoder") to a path under the models dir."""

    name: str
    family: str
    task: str
    files: Mapping[str, str]
    sha256: Mapping[str, str]
    root: Path
    export_command: str = ""
    info: Mapping[str, Any] = field(default_factory=dict)

    def path(self, role: str) -> Path:
        return self.root / self.files[role]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(models_dir: Path) -> dict[str, Any]:
    path = Path(models_dir) / MANIFEST_NAME
    if not path.is_file():
        return {"models": {}}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SubtoneError(f"{path} is not valid JSON ({exc}); expected the model manifest") from None


def list_models(models_dir: Path) -> list[ModelEntry]:
    data = read_manifest(models_dir)
    return [_entry(models_dir, name, raw) for name, raw in sorted(data.get("models", {}).items())]


def _entry(models_dir: Path, name: str, raw: Mapping[str, Any]) -> ModelEntry:
    known = {"family", "task", "files", "sha256", "export_command"}
    return ModelEntry(
        name=name,
        family=raw["family"],
        task=raw.get("task", "asr"),
        files=dict(raw["files"]),
        sha256=dict(raw.get("sha256", {})),
        root=Path(models_dir),
        export_command=raw.get("export_command", ""),
        info={k: v for k, v in raw.items() if k not in known},
    )


def model_problems(entry: ModelEntry) -> list[str]:
    """Missing files and sha256 mismatches, each as a sentence that says how to fix it."""
    fix = f"run `{entry.export_command}`" if entry.export_command else "re-export the model"
    problems = []
    for role, rel in entry.files.items():
        path = entry.root / rel
        if not path.is_file():
            problems.append(f"model '{entry.name}': {role} file {path} is missing; {fix}")
            continue
        expected = entry.sha256.get(role)
        if expected and sha256_file(path) != expected:
            problems.append(
                f"model '{entry.name}': {role} file {path} does not match the sha256 in the manifest "
                f"(changed or corrupt); {fix}"
            )
    return problems


def load_model(models_dir: Path, name: str, verify: bool = True) -> ModelEntry:
    """The named entry, with its files checked; raises SubtoneError naming what is wrong."""
    data = read_manifest(models_dir)
    models = data.get("models", {})
    if name not in models:
        known = ", ".join(sorted(models)) or "none"
        raise SubtoneError(
            f"model '{name}' is not in {Path(models_dir) / MANIFEST_NAME} (models there: {known})"
        )
    entry = _entry(models_dir, name, models[name])
    if verify:
        problems = model_problems(entry)
        if problems:
            raise SubtoneError(problems[0])
    return entry
