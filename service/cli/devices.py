"""`subtone devices`: the microphones subtone can use, with the index or name to put in [audio] device."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "devices",
        help="list microphones and system-audio monitors",
        description="List audio inputs: index, name, default rate, host API; * marks the system default. "
        "Put an index or part of a name in [audio] device of the settings file. Then the monitors "
        "(what each output plays) for [audio] system_device, where PulseAudio or PipeWire runs.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from subtone.service.audio.capture import list_input_devices  # needs PortAudio: only here
    from subtone.service.audio.system import list_monitors

    devices = list_input_devices()
    print("microphones:" if devices else "no microphone found")
    for d in devices:
        star = "*" if d.is_default else " "
        print(f"{star} {d.index:>3}  {d.name}  ({d.default_rate:.0f} Hz, {d.host_api})")
    monitors = list_monitors()
    print("system audio (monitors, for [audio] system_device):" if monitors else "no system-audio monitor found")
    for m in monitors:
        print(f"       {m.name}  ({m.description})")
    return 0 if devices or monitors else 1
