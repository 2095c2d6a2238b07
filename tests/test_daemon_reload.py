"""The daemon's reload of its settings file, in-process and not started (no audio opens): what
applies live reaches the controller, what waits for a restart does not, and the banner says which."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes import ScriptedRecognizer
from subtone.config.settings import load_settings_forgiving
from subtone.service.app.controller import ModelSet
from subtone.service.app.daemon import Daemon, DaemonOptions


@pytest.fixture()
def daemon(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text('[history]\nenabled = false\n[trigger]\nmode = "push-to-talk"\n')
    settings, problems = load_settings_forgiving(path, {"audio.device": "USB"})
    made = Daemon(settings, DaemonOptions(tray=False, overlay=False, hotkey=False, settings_file=path,
                                          settings_overrides=(("audio.device", "USB"),)))
    banners: list[str] = []
    made._banner_sink = banners.append
    made.controller._models = lambda: ModelSet(ScriptedRecognizer(), None, "")
    yield made, path, banners
    made.shutdown()


def test_reload_applies_mode_listening_names_and_keeps_the_model_until_a_restart(daemon):
    d, path, banners = daemon
    d.controller.set_emotion_shown(True)
    path.write_text('[history]\nenabled = false\n[trigger]\nmode = "both"\nlistening = false\n'
                    '[audio]\nmicrophone_name = "me"\ndevice = "Other"\n[asr]\nmodel = "whisper-tiny.en"\n'
                    '[overlay]\nfont_size = 30\n[vad]\nbogus = 1\n')
    plan = d.reload_settings().result(timeout=30)
    assert d.controller.mode == "both" and not d.controller.listening
    assert d.controller._speakers["microphone"] == "me"
    # The command line's --device stays on top of the file: not a change.
    assert "audio.device" not in plan.live + plan.restart and d.settings.audio.device == "USB"
    assert plan.restart == ("asr.model",) and d.settings.asr.model != "whisper-tiny.en"
    assert d.settings.overlay.font_size == 30  # applied (no overlay here to redraw)
    assert banners[-1] == ("⚠ settings reloaded: applied audio.microphone_name, trigger.mode, trigger.listening "
                           "(+1 more) · restart subtone for asr.model · skipped: unknown key 'vad.bogus'")
    assert "bogus" in d.controller.settings_note

    again = d.reload_settings().result(timeout=30)  # nothing new: the model still waits for a restart
    assert again.live == () and again.restart == ("asr.model",)


def test_a_missing_config_file_keeps_what_runs_and_says_so(daemon):
    d, path, banners = daemon
    path.unlink()
    assert d.reload_settings().result(timeout=30) is None
    assert banners[-1].startswith("⚠ settings not reloaded: config file not found")
    assert d.controller.mode == "push-to-talk"
