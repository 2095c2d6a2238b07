"""Helpers shared by commands. `settings_from_args` lives in subtone.config so the model factory
(subtone.export, which must not import this package) uses the same one."""

from subtone.config import settings_from_args

__all__ = ["settings_from_args"]
