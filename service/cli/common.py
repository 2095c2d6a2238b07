"""Helpers shared by commands: settings from CLI flags."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from subtone.config import Settings, load_settings


def settings_from_args(args: argparse.Namespace, **overrides: Any) -> Settings:
    user_file = Path(args.config) if getattr(args, "config", None) else None
    return load_settings(user_file, {k: v for k, v in overrides.items() if v is not None})
