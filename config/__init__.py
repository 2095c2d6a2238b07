"""Typed settings: `default.toml` holds every default, users override a subset."""

from subtone.config.settings import (
    ConfigError,
    Settings,
    load_settings,
    user_config_path,
)

__all__ = ["ConfigError", "Settings", "load_settings", "user_config_path"]
