"""Shared fixtures: where the shared data is, and the models our own export code builds."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()
ASR_DEV = SHARED_DATA / "asr-dev"
EMOTION_DATA = SHARED_DATA / "emotion"
JFK = ASR_DEV / "en" / "whisper_jfk" / "jfk.flac"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}: tests need ../shared/data beside the repo")
    return SHARED_DATA
