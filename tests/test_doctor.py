"""`subtone doctor` tells "not installed" from "installed, cannot start" (e.g. no display)."""

from __future__ import annotations

import os
import subprocess
import sys

from subtone.service.cli.doctor import _version


def test_a_missing_module_is_not_installed():
    assert _version("surely_no_such_module_here") == "not installed"


def test_without_a_display_the_hotkey_library_is_installed_but_cannot_start(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = subprocess.run([sys.executable, "-m", "subtone.service.cli.main", "--config", str(config), "doctor"],
                         capture_output=True, text=True, env=env, timeout=60)
    (line,) = [line for line in out.stdout.splitlines() if line.startswith("pynput")]
    assert "cannot start" in line and "not installed" not in line, line
