"""Typed settings: `default.toml` holds every default, users override a subset."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from subtone.config.settings import (
    ConfigError,
    Settings,
    load_settings,
    user_config_path,
)

__all__ = ["ConfigError", "Settings", "load_settings", "settings_from_args", "user_config_path"]


def settings_from_args(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings for a command: the global `--config FILE` (else the user config), then its flags.

    Overrides are dotted keys (`asr.model`); a None value means the flag was not given.
    """
    user_file = Path(args.config) if getattr(args, "config", None) else None
    return load_settings(user_file, {k: v for k, v in overrides.items() if v is not None})
