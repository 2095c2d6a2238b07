"""Settings dataclasses, loading and validation.

Defaults live only in `default.toml`; the dataclasses here say what each key's
type and allowed range are. Layers, later wins: defaults → user file → CLI overrides.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import platformdirs

log = logging.getLogger(__name__)

DEFAULT_TOML = Path(__file__).with_name("default.toml")
APP_NAME = "subtone"


class ConfigError(ValueError):
    """A setting that is unknown, of the wrong type or out of range."""


def _range(lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    return {"min": lo, "max": hi}


def _choices(*values: str) -> dict[str, Any]:
    return {"choices": values}


@dataclass(frozen=True)
class ModelsSettings:
    dir: str


@dataclass(frozen=True)
class RuntimeSettings:
    providers: tuple[str, ...] = field(metadata={"each": _choices("cuda", "cpu")})
    threads: int = field(metadata=_range(0, 256))


@dataclass(frozen=True)
class WhisperSettings:
    max_tokens: int = field(metadata=_range(1, 448))
    no_speech_threshold: float = field(metadata=_range(0.0, 1.0))
    logprob_threshold: float = field(metadata=_range(-20.0, 0.0))
    trim_encoder: bool
    max_partial_tokens_per_s: float = field(metadata=_range(1.0, 50.0))
    normalize_level: bool


@dataclass(frozen=True)
class AsrSettings:
    model: str
    language: str
    task: str = field(metadata=_choices("transcribe", "translate"))
    silence_gate_dbfs: float = field(metadata=_range(-120.0, 0.0))
    whisper: WhisperSettings


@dataclass(frozen=True)
class EmotionSettings:
    enabled: bool
    model: str
    min_confidence: float = field(metadata=_range(0.0, 1.0))


@dataclass(frozen=True)
class AudioSettings:
    source: str = field(metadata=_choices("microphone", "system", "both"))
    device: str
    system_device: str
    microphone_name: str
    system_name: str
    block_ms: int = field(metadata={"choices": (10, 20, 30)})
    reopen_backoff_max_s: float = field(metadata=_range(0.5, 300.0))
    latency_ms: int = field(metadata=_range(0, 2000))


@dataclass(frozen=True)
class TriggerSettings:
    mode: str = field(metadata=_choices("push-to-talk", "voice", "both"))
    listening: bool
    hotkey_pre_roll_ms: int = field(metadata=_range(0, 2000))
    hotkey_post_roll_ms: int = field(metadata=_range(0, 2000))
    max_pending_utterances: int = field(metadata=_range(1, 100))


@dataclass(frozen=True)
class VadSettings:
    aggressiveness: int = field(metadata=_range(0, 3))
    frame_ms: int = field(metadata={"choices": (10, 20, 30)})
    pre_roll_ms: int = field(metadata=_range(0, 5000))
    start_window_ms: int = field(metadata=_range(10, 5000))
    start_speech_ms: int = field(metadata=_range(10, 5000))
    end_silence_ms: int = field(metadata=_range(30, 10000))
    tail_keep_ms: int = field(metadata=_range(0, 10000))
    max_utterance_s: float = field(metadata=_range(1.0, 30.0))
    min_speech_ms: int = field(metadata=_range(0, 10000))
    noise_floor_window_s: float = field(metadata=_range(0.3, 60.0))
    noise_margin_db: float = field(metadata=_range(0.0, 60.0))
    start_modulation_db: float = field(metadata=_range(0.0, 60.0))


@dataclass(frozen=True)
class HistorySettings:
    enabled: bool
    file: str


@dataclass(frozen=True)
class OverlaySettings:
    position: str = field(
        metadata=_choices("bottom-center", "top-center", "bottom-left", "bottom-right", "top-left", "top-right")
    )
    monitor: int = field(metadata=_range(-1, 63))
    margin_px: int = field(metadata=_range(0, 2000))
    width: float = field(metadata=_range(0.2, 1.0))
    font_family: str
    font_size: int = field(metadata=_range(8, 96))
    lines: int = field(metadata=_range(1, 10))
    caption_seconds: float = field(metadata=_range(1.0, 120.0))
    fade_seconds: float = field(metadata=_range(0.0, 10.0))
    # The lower bound is palette.MIN_BACKDROP_OPACITY: below it the text colors lose WCAG AA contrast.
    backdrop_opacity: float = field(metadata=_range(0.8, 1.0))
    show_language: bool


@dataclass(frozen=True)
class HotkeySettings:
    combo: str
    recent_combo: str
    style: str = field(metadata=_choices("hold", "toggle"))


@dataclass(frozen=True)
class StreamingSettings:
    enabled: bool
    partial_interval_s: float = field(metadata=_range(0.1, 10.0))
    min_audio_for_partial_s: float = field(metadata=_range(0.0, 30.0))
    emotion_smoothing: float = field(metadata=_range(0.01, 1.0))
    emotion_margin: float = field(metadata=_range(0.0, 1.0))
    emotion_hold_updates: int = field(metadata=_range(1, 100))


@dataclass(frozen=True)
class Settings:
    models: ModelsSettings
    runtime: RuntimeSettings
    asr: AsrSettings
    emotion: EmotionSettings
    audio: AudioSettings
    trigger: TriggerSettings
    vad: VadSettings
    history: HistorySettings
    overlay: OverlaySettings
    hotkey: HotkeySettings
    streaming: StreamingSettings

    def models_dir(self) -> Path:
        if self.models.dir:
            return Path(self.models.dir).expanduser()
        return project_models_dir()


def project_models_dir() -> Path:
    """The repository's models_onnx/ (this package is installed from a checkout)."""
    return Path(__file__).resolve().parent.parent / "models_onnx"


def user_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


MOVED_KEYS: dict[str, str] = {
    "asr.max_tokens": "asr.whisper.max_tokens",
    "asr.no_speech_threshold": "asr.whisper.no_speech_threshold",
    "asr.logprob_threshold": "asr.whisper.logprob_threshold",
    "asr.trim_encoder": "asr.whisper.trim_encoder",
    "streaming.max_partial_tokens_per_s": "asr.whisper.max_partial_tokens_per_s",
}
"""Keys that moved to a model family's own table: old files still work, with a warning."""


def _move_old_keys(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A copy of `data` with each key of MOVED_KEYS put at its new place (a warning names it)."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    for old, new in MOVED_KEYS.items():
        table, key = old.split(".")
        if not isinstance(out.get(table), dict) or key not in out[table]:
            continue
        value = out[table].pop(key)
        node = out
        *parents, leaf = new.split(".")
        for part in parents:
            node[part] = node = dict(node.get(part, {}))
        if leaf in node:
            raise ConfigError(f"{where}: '{old}' moved to '{new}'; set only '{new}'")
        node[leaf] = value
        log.warning("%s: '%s' is now '%s' (read from the old place; please move it)", where, old, new)
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _merge(base: dict[str, Any], override: Mapping[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        path = f"{prefix}{key}"
        if key not in base:
            known = ", ".join(sorted(base))
            raise ConfigError(f"{where}: unknown key '{path}' (known keys here: {known})")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: '{path}' must be a table, got {value!r}")
            out[key] = _merge(base[key], value, where, f"{path}.")
        else:
            out[key] = value
    return out


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _check_bool(value: Any, path: str) -> Any:
    if not isinstance(value, bool):
        raise ConfigError(f"'{path}' = {value!r}: expected true or false")
    return value


def _check_int(value: Any, path: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"'{path}' = {value!r}: expected a whole number")
    return value


def _check_float(value: Any, path: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"'{path}' = {value!r}: expected a number")
    return float(value)


def _check_str(value: Any, path: str) -> Any:
    if not isinstance(value, str):
        raise ConfigError(f"'{path}' = {value!r}: expected a string")
    return value


_TYPE_CHECKS = {bool: _check_bool, int: _check_int, float: _check_float, str: _check_str}


def _check_limits(value: Any, meta: Mapping[str, Any], path: str) -> None:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise ConfigError(f"'{path}' = {value!r}: expected a value from {lo} to {hi}")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"'{path}' = {value!r}: expected one of {', '.join(map(repr, choices))}")


def _coerce(value: Any, tp: Any, meta: Mapping[str, Any], path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is tuple:
        (item_tp, _) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{path}' = {value!r}: expected a list of {_type_name(item_tp)}")
        each = meta.get("each", {})
        return tuple(_coerce(v, item_tp, each, f"{path}[{i}]") for i, v in enumerate(value))
    if tp not in _TYPE_CHECKS:
        raise TypeError(f"unsupported settings type {tp!r} at {path}")
    value = _TYPE_CHECKS[tp](value, path)
    _check_limits(value, meta, path)
    return value


def _build(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        if f.name not in data:
            raise ConfigError(f"'{path}' is missing from {DEFAULT_TOML}")
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = _build(tp, data[f.name], f"{path}.")
        else:
            kwargs[f.name] = _coerce(data[f.name], tp, f.metadata, path)
    extra = set(data) - {f.name for f in dataclasses.fields(cls)}
    if extra:
        raise ConfigError(f"{DEFAULT_TOML}: keys without a setting: {sorted(extra)}")
    return cls(**kwargs)


def _dotted_to_nested(overrides: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        node = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def load_settings(
    user_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults, then the user file (if it exists), then dotted CLI overrides."""
    data = _read_toml(DEFAULT_TOML)
    path = user_file if user_file is not None else user_config_path()
    if path.exists():
        data = _merge(data, _move_old_keys(_read_toml(path), str(path)), str(path))
    elif user_file is not None:
        raise ConfigError(f"config file not found: {path}")
    if overrides:
        data = _merge(data, _move_old_keys(_dotted_to_nested(overrides), "command line"), "command line")
    return _build(Settings, data)


def _leaves(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested table as dotted keys → values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def load_settings_forgiving(
    user_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[Settings, tuple[str, ...]]:
    """Like load_settings, but a bad key or value in the user file is skipped and reported, and the
    rest of the file applies; a file that is not TOML at all is not used (reported). The command
    line's overrides stay strict: they were typed just now."""
    defaults = _read_toml(DEFAULT_TOML)
    path = user_file if user_file is not None else user_config_path()
    problems: list[str] = []
    good: dict[str, Any] = {}
    if path.exists():
        try:
            user = _move_old_keys(_read_toml(path), str(path))
        except ConfigError as exc:
            user, problems = {}, [f"settings file not used: {exc}"]
        for key, value in _leaves(user).items():
            try:
                _build(Settings, _merge(defaults, _dotted_to_nested({key: value}), str(path)))
            except ConfigError as exc:
                problems.append(f"skipped: {exc}")
                continue
            good[key] = value
    elif user_file is not None:
        raise ConfigError(f"config file not found: {path}")
    data = _merge(defaults, _dotted_to_nested(good), str(path))
    if overrides:
        data = _merge(data, _move_old_keys(_dotted_to_nested(overrides), "command line"), "command line")
    return _build(Settings, data), tuple(problems)
