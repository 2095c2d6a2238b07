"""`subtone doctor`: what is installed, which provider runs, which models are usable."""

from __future__ import annotations

import argparse
import importlib
import platform
from importlib import metadata

import onnxruntime as ort

from pathlib import Path

from subtone.config import settings_from_args, user_config_path
from subtone.service.models.registry import list_models, model_problems
from subtone.service.models.onnx_session import resolve_providers


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="check versions, providers, microphones and models",
        description="Report what subtone can use on this machine; exit 1 if a configured model is unusable.",
    )
    p.set_defaults(func=run)


DISTRIBUTIONS = {"webrtcvad": "webrtcvad-wheels", "PySide6": "PySide6-Essentials"}
"""Modules whose package on PyPI has another name."""


def _version(module: str) -> str:
    """The installed version, "not installed", or "installed, cannot start: <why>" (e.g. no display)."""
    try:
        installed = metadata.version(DISTRIBUTIONS.get(module, module))
    except metadata.PackageNotFoundError:
        installed = ""
    try:
        imported = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module or not installed:
            return "not installed"
        return f"{installed}, cannot start: {exc.name} is missing"
    except Exception as exc:  # pystray and pynput refuse to import without a display
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        return f"{installed or 'installed'}, cannot start: {reason}"
    return getattr(imported, "__version__", "") or installed or "installed"


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    print(f"python       {platform.python_version()} on {platform.platform()}")
    print(f"onnxruntime  {ort.__version__}")
    for mod in ("numpy", "sounddevice", "webrtcvad", "PySide6", "pystray", "pynput"):
        print(f"{mod:<12} {_version(mod)}")
    chosen, reason = resolve_providers(settings.runtime.providers)
    print(f"providers    available: {', '.join(ort.get_available_providers())}")
    print(f"             chosen: {chosen[0]}" + (f" ({reason})" if reason else ""))
    config = Path(args.config) if getattr(args, "config", None) else user_config_path()
    print(f"config       {config}" + ("" if config.exists() else " (not created; defaults in use)"))
    _print_inputs()
    models_dir = settings.models_dir()
    print(f"models       {models_dir}")
    bad_configured = False
    for entry in list_models(models_dir):
        problems = model_problems(entry)
        configured = entry.name in (settings.asr.model, settings.emotion.model)
        mark = "ok " if not problems else "BAD"
        print(f"  [{mark}] {entry.name:<24} {entry.family:<10} {'(configured)' if configured else ''}")
        for p in problems:
            print(f"        {p}")
        bad_configured |= configured and bool(problems)
    return 1 if bad_configured else 0


def _print_inputs() -> None:
    try:
        import sounddevice as sd
    except Exception as exc:  # missing PortAudio is an expected state on servers
        print(f"microphones  unavailable ({exc.__class__.__name__}: {exc})")
        return
    try:
        devices = [d for d in sd.query_devices() if d["max_input_channels"] > 0]
        default_in = sd.default.device[0]
    except Exception as exc:
        print(f"microphones  unavailable ({exc})")
        return
    print(f"microphones  {len(devices)} input device(s)")
    for d in devices:
        star = "*" if d["index"] == default_in else " "
        print(f"  {star} {d['index']:>2} {d['name']} ({int(d['default_samplerate'])} Hz)")
