"""What the overlay's one-line banner says when the service changes state (pure: no Qt, no threads).

The tray icon is easy to miss; a deaf user looks at the captions. So the moments that change
what they can expect are said there too: how to start, listening paused, something broke and
what, and that it works again.
"""

from __future__ import annotations

from subtone.service.events import ServiceState, StateChanged


def key_names(combo: str) -> str:
    """pynput's "<ctrl>+<alt>+space" as people write it: "Ctrl+Alt+Space"."""
    return "+".join(part.strip("<>").capitalize() for part in combo.split("+"))


def how_to_start(mode: str, combo: str, hotkey: bool) -> str:
    if mode == "voice" or not hotkey:
        return "listening: speech is captioned as it comes"
    keys = key_names(combo)
    if mode == "both":
        return f"listening: speech is captioned as it comes, or hold {keys} and talk"
    return f"hold {keys} and talk to caption"


def banner_for(previous: StateChanged | None, current: StateChanged, start_hint: str) -> str | None:
    """The banner for a change of state, or None when this change needs no words."""
    if previous == current:
        return None
    if current.state is ServiceState.ERROR:
        return f"⚠ {current.detail}" if current.detail else "⚠ something went wrong: see the tray"
    if previous is not None and previous.state is ServiceState.ERROR:
        return "✓ working again"
    if current.state is ServiceState.IDLE:
        return "not listening: captions paused (tray → Listening)"
    if current.state is ServiceState.LISTENING and (previous is None or previous.state is ServiceState.IDLE):
        return start_hint
    return None
