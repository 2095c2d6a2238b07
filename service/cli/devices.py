"""`subtone devices`: the microphones subtone can use, with the index or name to put in [audio] device."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "devices",
        help="list microphones (inputs)",
        description="List audio inputs: index, name, default rate, host API; * marks the system default. "
        "Put an index or part of a name in [audio] device of the settings file.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from subtone.service.audio.capture import list_input_devices  # needs PortAudio: only here

    devices = list_input_devices()
    if not devices:
        print("no microphone found")
        return 1
    for d in devices:
        star = "*" if d.is_default else " "
        print(f"{star} {d.index:>3}  {d.name}  ({d.default_rate:.0f} Hz, {d.host_api})")
    return 0
