"""The overlay banner's words for state changes (pure)."""

from __future__ import annotations

from subtone.service.app.banners import banner_for, how_to_start, key_names
from subtone.service.events import ServiceState, StateChanged

LISTENING = StateChanged(ServiceState.LISTENING)
HEARING = StateChanged(ServiceState.HEARING)
IDLE = StateChanged(ServiceState.IDLE)
MIC_LOST = StateChanged(ServiceState.ERROR, "microphone 'USB' unavailable: device removed")


def test_the_first_state_says_how_to_start_in_the_users_own_keys():
    hint = how_to_start("push-to-talk", "<ctrl>+<alt>+space", hotkey=True)
    assert hint == "hold Ctrl+Alt+Space and talk to caption"
    assert banner_for(None, LISTENING, hint) == hint
    assert "hold" not in how_to_start("push-to-talk", "<ctrl>+<alt>+space", hotkey=False)  # no hotkey: say what works
    assert key_names("<cmd>+<shift>+h") == "Cmd+Shift+H"


def test_errors_are_said_with_their_detail_and_recovery_is_said_too():
    assert banner_for(LISTENING, MIC_LOST, "") == "⚠ microphone 'USB' unavailable: device removed"
    assert banner_for(MIC_LOST, MIC_LOST, "") is None
    assert banner_for(MIC_LOST, LISTENING, "") == "✓ working again"


def test_listening_off_and_back_on_are_said_and_ordinary_speech_is_not():
    assert banner_for(LISTENING, IDLE, "hint").startswith("not listening")
    assert banner_for(IDLE, LISTENING, "hint") == "hint"
    assert banner_for(LISTENING, HEARING, "hint") is None
    assert banner_for(HEARING, LISTENING, "hint") is None
