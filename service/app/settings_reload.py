"""What a reload of the settings file changes, what of it applies live, and the banner saying so
(pure: no Qt, no threads, no files).

    plan = plan_reload(in_effect, reloaded, problems, emotion_loaded=True)
    plan.live        # ("trigger.mode", "overlay.font_size"): the daemon applies these now
    plan.restart     # ("asr.model",): these wait for the next `subtone run`
    reload_banner(plan)   # "settings reloaded: applied trigger.mode, overlay.font_size · restart …"
    in_effect = settings_in_effect(in_effect, reloaded, plan)

Only keys whose value in the file changed are applied, so a reload never undoes what was chosen in
the tray since (listening off, another mode) unless the file itself says otherwise now.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from subtone.config import Settings

LIVE_KEYS = frozenset({
    "trigger.mode",
    "trigger.listening",
    "audio.source",
    "audio.device",
    "audio.system_device",
    "audio.microphone_name",
    "audio.system_name",
    "hotkey.combo",
    "hotkey.recent_combo",
    "emotion.min_confidence",
})
"""Dotted keys the running daemon can change without a restart (besides LIVE_TABLES)."""
LIVE_TABLES = ("overlay.",)
"""Every key under these tables applies live (the overlay redraws with its new look)."""
EMOTION_SWITCH = "emotion.enabled"
"""Live only when the emotion model was loaded at start: turning it on needs the model."""


@dataclass(frozen=True)
class ReloadPlan:
    live: tuple[str, ...] = ()
    """Changed keys applied now, in settings order."""
    restart: tuple[str, ...] = ()
    """Changed keys that take effect at the next start."""
    problems: tuple[str, ...] = ()
    """Keys of the file that were skipped (from load_settings_forgiving), in its words."""

    @property
    def changed(self) -> bool:
        return bool(self.live or self.restart)


def leaves(settings: Any, prefix: str = "") -> dict[str, Any]:
    """A settings dataclass as dotted keys → values ("asr.whisper.max_tokens": 224)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            out.update(leaves(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


def changed_keys(old: Settings, new: Settings) -> list[str]:
    """Dotted keys whose value differs, in the order of the settings."""
    before, after = leaves(old), leaves(new)
    return [key for key, value in after.items() if before.get(key) != value]


def applies_live(key: str, emotion_loaded: bool) -> bool:
    if key == EMOTION_SWITCH:
        return emotion_loaded
    return key in LIVE_KEYS or key.startswith(LIVE_TABLES)


def plan_reload(in_effect: Settings, reloaded: Settings, problems: tuple[str, ...] = (),
                emotion_loaded: bool = True) -> ReloadPlan:
    """Sort what changed between the settings in effect and the file just read."""
    live, restart = [], []
    for key in changed_keys(in_effect, reloaded):
        (live if applies_live(key, emotion_loaded) else restart).append(key)
    return ReloadPlan(tuple(live), tuple(restart), tuple(problems))


def with_values(settings: Any, values: dict[str, Any]) -> Any:
    """A copy of a settings dataclass with dotted keys replaced."""
    nested: dict[str, dict[str, Any]] = {}
    direct: dict[str, Any] = {}
    for key, value in values.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, inner in nested.items():
        direct[head] = with_values(getattr(settings, head), inner)
    return dataclasses.replace(settings, **direct)


def settings_in_effect(in_effect: Settings, reloaded: Settings, plan: ReloadPlan) -> Settings:
    """The settings running after the reload: the file's values for what applied, the old ones for
    what waits for a restart (so the next reload still says a restart is needed)."""
    new = leaves(reloaded)
    return with_values(in_effect, {key: new[key] for key in plan.live})


def _names(keys: tuple[str, ...], most: int = 3) -> str:
    shown = ", ".join(keys[:most])
    return f"{shown} (+{len(keys) - most} more)" if len(keys) > most else shown


def short_problem(problem: str) -> str:
    """A skipped key in few words for a one-line banner: no file path, no list of known keys
    (both stay in the log)."""
    problem = re.sub(r"(?<=: )\S+\.toml: ", "", problem)
    return re.sub(r" \(known keys here: [^)]*\)", "", problem)


def reload_banner(plan: ReloadPlan) -> str:
    """One line for the overlay: what applied, what needs a restart, the first bad key."""
    parts = []
    if plan.live:
        parts.append(f"applied {_names(plan.live)}")
    if plan.restart:
        parts.append(f"restart subtone for {_names(plan.restart)}")
    if not plan.changed:
        parts.append("nothing changed")
    text = "settings reloaded: " + " · ".join(parts)
    if plan.problems:
        more = f" (+{len(plan.problems) - 1} more, see the log)" if len(plan.problems) > 1 else ""
        text = f"⚠ {text} · {short_problem(plan.problems[0])}{more}"
    return text


class SettingsFileWatch:
    """Tells when the settings file was saved since the last look (its mtime and size; a file that
    appears or goes counts too). The daemon polls it every few seconds: cheaper than inotify's
    extra dependency, and an editor's save is a rare event."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = self._read()

    def _read(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def changed(self) -> bool:
        stamp = self._read()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        return True
