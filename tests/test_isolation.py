"""Tests never see the real user folders: the settings file and the caption history resolve under
the test's own folders (tests/conftest.py), in-process, in module fixtures and in subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from subtone.config import load_settings, user_config_path
from subtone.service.app.history import history_path


def _default_history() -> Path:
    return history_path(load_settings(overrides={"history.file": ""}).history)


def _outside(path: Path, real: dict[str, Path]) -> bool:
    return not any(path.is_relative_to(folder) for folder in real.values())


def test_settings_file_and_history_resolve_under_this_tests_folders(user_folders, real_user_folders):
    config, history = user_config_path(), _default_history()
    assert config.is_relative_to(user_folders / "config"), config
    assert history.is_relative_to(user_folders / "data"), history
    assert _outside(config, real_user_folders) and _outside(history, real_user_folders), (config, history)


def test_a_settings_file_written_here_is_the_one_loaded(user_folders):
    # What a user's config.toml does, here without touching theirs: proves load_settings reads this folder.
    path = user_config_path()
    assert path.is_relative_to(user_folders), f"not writing {path}: it is outside the test's folders"
    path.parent.mkdir(parents=True)
    path.write_text('[overlay]\nposition = "top-left"\n')
    assert load_settings().overlay.position == "top-left"


def test_each_test_gets_fresh_folders(user_folders):
    assert not user_config_path().exists(), "a settings file left by another test is visible"


@pytest.fixture(scope="module")
def paths_seen_by_a_module_fixture() -> tuple[Path, Path]:
    return user_config_path(), _default_history()


def test_session_and_module_fixtures_are_isolated_too(paths_seen_by_a_module_fixture, session_user_folders,
                                                      real_user_folders):
    config, history = paths_seen_by_a_module_fixture
    assert config.is_relative_to(session_user_folders) and history.is_relative_to(session_user_folders)
    assert _outside(config, real_user_folders) and _outside(history, real_user_folders)


def test_subprocesses_inherit_the_folders(user_folders):
    code = ("from subtone.config import user_config_path; from subtone.service.app.history import history_path; "
            "from subtone.config import load_settings; print(user_config_path()); "
            "print(history_path(load_settings(overrides={'history.file': ''}).history))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    config, history = map(Path, out.stdout.split())
    assert config.is_relative_to(user_folders) and history.is_relative_to(user_folders), out.stdout
