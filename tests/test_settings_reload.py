"""What a reload of the settings file changes and what of it applies live (pure), and the file watch."""

from __future__ import annotations

import os
from pathlib import Path

from subtone.config import load_settings
from subtone.config.settings import load_settings_forgiving
from subtone.service.app.settings_reload import (
    ReloadPlan,
    SettingsFileWatch,
    changed_keys,
    plan_reload,
    reload_banner,
    settings_in_effect,
    with_values,
)


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_changed_keys_are_dotted_and_in_settings_order(tmp_path):
    old = load_settings(_file(tmp_path, ""))
    new = load_settings(_file(tmp_path, '[overlay]\nfont_size = 30\n[asr]\nmodel = "x"\n[asr.whisper]\nmax_tokens = 9\n'))
    assert changed_keys(old, new) == ["asr.model", "asr.whisper.max_tokens", "overlay.font_size"]
    assert changed_keys(old, old) == []


def test_live_keys_apply_now_and_model_changes_wait_for_a_restart(tmp_path):
    old = load_settings(_file(tmp_path, ""))
    new = load_settings(_file(tmp_path, '[trigger]\nmode = "voice"\n[audio]\nsource = "both"\n'
                                        '[asr]\nmodel = "whisper-tiny.en-int8"\n[vad]\naggressiveness = 3\n'
                                        '[overlay]\nfont_size = 40\nposition = "top-center"\n'))
    plan = plan_reload(old, new)
    assert plan.live == ("audio.source", "trigger.mode", "overlay.position", "overlay.font_size")
    assert plan.restart == ("asr.model", "vad.aggressiveness")
    assert plan.changed


def test_emotion_switch_is_live_only_when_its_model_was_loaded(tmp_path):
    old = load_settings(_file(tmp_path, ""))
    off = load_settings(_file(tmp_path, "[emotion]\nenabled = false\n"))
    assert plan_reload(old, off, emotion_loaded=True).live == ("emotion.enabled",)
    assert plan_reload(old, off, emotion_loaded=False).restart == ("emotion.enabled",)


def test_what_waits_for_a_restart_is_said_again_on_the_next_reload(tmp_path):
    """The settings in effect keep the running model, so the next reload still names it."""
    old = load_settings(_file(tmp_path, ""))
    new = load_settings(_file(tmp_path, '[asr]\nmodel = "other"\n[trigger]\nmode = "both"\n'))
    plan = plan_reload(old, new)
    effect = settings_in_effect(old, new, plan)
    assert effect.trigger.mode == "both" and effect.asr.model == old.asr.model
    again = plan_reload(effect, new)
    assert again.live == () and again.restart == ("asr.model",)


def test_a_key_the_file_did_not_change_is_not_applied(tmp_path):
    """A tray choice made since (another mode) survives a reload of a file that does not set it."""
    before = load_settings(_file(tmp_path, "[overlay]\nfont_size = 30\n"))
    after = load_settings(_file(tmp_path, "[overlay]\nfont_size = 31\n"))
    assert plan_reload(before, after).live == ("overlay.font_size",)


def test_with_values_replaces_nested_keys_only():
    s = load_settings(Path(os.devnull))
    t = with_values(s, {"asr.whisper.max_tokens": 7, "trigger.mode": "voice"})
    assert t.asr.whisper.max_tokens == 7 and t.trigger.mode == "voice"
    assert t.asr.model == s.asr.model and s.asr.whisper.max_tokens != 7


def test_banner_says_what_applied_what_needs_a_restart_and_the_first_bad_key(tmp_path):
    path = _file(tmp_path, '[trigger]\nmode = "voice"\n[asr]\nmodel = "big"\n[audio]\nsource = "mic"\n[overlay]\nfontsize = 3\n')
    new, problems = load_settings_forgiving(path)
    plan = plan_reload(load_settings(Path(os.devnull)), new, problems)
    text = reload_banner(plan)
    assert text.startswith("⚠ settings reloaded: applied trigger.mode · restart subtone for asr.model · ")
    assert text.endswith("· skipped: 'audio.source' = 'mic': expected one of 'microphone', 'system', 'both' "
                         "(+1 more, see the log)")
    assert str(tmp_path) not in text
    assert reload_banner(ReloadPlan()) == "settings reloaded: nothing changed"
    many = ReloadPlan(live=("a.b", "c.d", "e.f", "g.h", "i.j"))
    assert reload_banner(many) == "settings reloaded: applied a.b, c.d, e.f (+2 more)"


def test_file_watch_sees_a_save_a_new_file_and_a_removed_one(tmp_path):
    path = tmp_path / "config.toml"
    watch = SettingsFileWatch(path)
    assert not watch.changed()
    path.write_text("[trigger]\n")
    assert watch.changed() and not watch.changed()
    path.write_text("[trigger]\nmode = \"voice\"\n")  # another size, even within the mtime's resolution
    assert watch.changed()
    path.unlink()
    assert watch.changed() and not watch.changed()


def test_the_emotion_threshold_applies_live():
    old = load_settings()
    unsure = load_settings(overrides={"emotion.min_confidence": 0.5})
    assert plan_reload(old, unsure, emotion_loaded=True).live == ("emotion.min_confidence",)
