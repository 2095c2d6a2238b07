from pathlib import Path

import pytest

from subtone.config import ConfigError, load_settings
from subtone.config.settings import DEFAULT_TOML, load_settings_forgiving, tomllib


def _user(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_load_from_default_toml(tmp_path):
    defaults = tomllib.loads(DEFAULT_TOML.read_text(encoding="utf-8"))
    s = load_settings(_user(tmp_path, ""))
    assert s.asr.model == defaults["asr"]["model"]
    assert s.runtime.providers == tuple(defaults["runtime"]["providers"])
    assert s.asr.whisper.max_tokens == defaults["asr"]["whisper"]["max_tokens"]
    assert s.vad.end_silence_ms == defaults["vad"]["end_silence_ms"]


def test_user_file_overrides_defaults_and_cli_overrides_both(tmp_path):
    path = _user(tmp_path, '[asr]\nmodel = "mine"\n[asr.whisper]\nmax_tokens = 100\n')
    assert load_settings(path).asr.whisper.max_tokens == 100
    s = load_settings(path, {"asr.whisper.max_tokens": 50})
    assert s.asr.model == "mine"
    assert s.asr.whisper.max_tokens == 50


def test_keys_that_moved_to_the_whisper_table_are_still_read_with_a_warning(tmp_path, caplog):
    path = _user(tmp_path, "[asr]\ntrim_encoder = false\n[streaming]\nmax_partial_tokens_per_s = 3.0\n")
    s = load_settings(path, {"asr.max_tokens": 40})
    assert s.asr.whisper.trim_encoder is False and s.asr.whisper.max_partial_tokens_per_s == 3.0
    assert s.asr.whisper.max_tokens == 40
    warned = " ".join(r.getMessage() for r in caplog.records)
    for new in ("asr.whisper.trim_encoder", "asr.whisper.max_partial_tokens_per_s", "asr.whisper.max_tokens"):
        assert f"is now '{new}'" in warned


def test_a_moved_key_given_at_both_places_is_an_error_naming_both(tmp_path):
    path = _user(tmp_path, "[asr]\nmax_tokens = 100\n[asr.whisper]\nmax_tokens = 50\n")
    with pytest.raises(ConfigError, match="'asr.max_tokens' moved to 'asr.whisper.max_tokens'"):
        load_settings(path)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[asr]\nmodle = 'x'\n", "unknown key 'asr.modle'"),
        ("[asr]\nmax_tokens = 'many'\n", "'asr.whisper.max_tokens' = 'many': expected a whole number"),
        ("[asr]\nmax_tokens = 0\n", "'asr.whisper.max_tokens' = 0: expected a value from 1 to 448"),
        ("[runtime]\nproviders = ['tpu']\n", "'runtime.providers[0]' = 'tpu': expected one of"),
        ("[asr]\ntrim_encoder = 1\n", "'asr.whisper.trim_encoder' = 1: expected true or false"),
        ("asr = 3\n", "'asr' must be a table"),
        ("[asr\n", "not valid TOML"),
    ],
)
def test_bad_settings_name_key_value_and_expectation(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as err:
        load_settings(_user(tmp_path, text))
    assert fragment in str(err.value)


def test_missing_explicit_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_forgiving_load_skips_each_bad_key_or_value_and_applies_the_rest(tmp_path):
    path = _user(tmp_path, "[asr]\nmodle = 'x'\nmodel = 'mine'\n[audio]\nblock_ms = 25\ndevice = 'USB'\n[nope]\na = 1\n")
    s, problems = load_settings_forgiving(path, {"trigger.mode": "voice"})
    assert (s.asr.model, s.audio.device, s.trigger.mode) == ("mine", "USB", "voice")
    assert s.audio.block_ms == load_settings(_user(tmp_path / "..", "")).audio.block_ms  # the default
    assert len(problems) == 3
    assert any("'asr.modle'" in p for p in problems) and any("'audio.block_ms' = 25" in p for p in problems)
    assert any("unknown key 'nope'" in p for p in problems)


def test_forgiving_load_of_a_file_that_is_not_toml_uses_the_defaults_and_says_so(tmp_path):
    s, problems = load_settings_forgiving(_user(tmp_path, "[asr\nmodel = 1\n"))
    assert s == load_settings(_user(tmp_path / "..", ""))
    assert len(problems) == 1 and "not valid TOML" in problems[0] and "settings file not used" in problems[0]


def test_forgiving_load_keeps_command_line_overrides_strict(tmp_path):
    with pytest.raises(ConfigError, match="trigger.mode"):
        load_settings_forgiving(_user(tmp_path, ""), {"trigger.mode": "loud"})
