"""Shared fixtures: where the shared data is, and the models our own export code builds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# The X11 test desktop (Xvfb, openbox + xcompmgr, dbus, trayer, QApplication): fixtures live in
# tests/x11_env.py; importing them here registers them for every test. tests/ goes on sys.path
# because --import-mode=importlib does not put it there (test modules import helpers from it too).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from x11_env import dbus_session, qapp, tray_host, window_manager, x_display  # noqa: E402,F401
from pulse_env import pulse_audio  # noqa: E402,F401  (PulseAudio virtual microphone)

SHARED_DATA = (REPO.parent / "shared" / "data").resolve()
ASR_DEV = SHARED_DATA / "asr-dev"
EMOTION_DATA = SHARED_DATA / "emotion"
JFK = ASR_DEV / "en" / "whisper_jfk" / "jfk.flac"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}: tests need ../shared/data beside the repo")
    return SHARED_DATA


WHISPER_MODELS = ("whisper-tiny.en", "whisper-tiny.en-int8")


@pytest.fixture(scope="session")
def whisper_model_dir() -> Path:
    """The project's models_onnx/ holding whisper-tiny.en (+ -int8), exported here if missing or changed.

    The export (`subtone export whisper`, ~15-30 s) runs at most once per session and
    under a file lock, so test runs started at the same time do not export over each other.
    """
    import fcntl

    from subtone.config.settings import project_models_dir
    from subtone.service.errors import SubtoneError
    from subtone.service.models.registry import load_model

    models_dir = project_models_dir()
    models_dir.mkdir(parents=True, exist_ok=True)

    def usable() -> bool:
        try:
            for name in WHISPER_MODELS:
                load_model(models_dir, name, verify=True)
        except SubtoneError:
            return False
        return True

    with (models_dir / ".whisper-export.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not usable():
            from subtone.export.commands import main as export_main

            assert export_main(["export", "whisper", "--out", str(models_dir)]) == 0
            assert usable(), f"whisper export into {models_dir} did not produce verified models"
    return models_dir
