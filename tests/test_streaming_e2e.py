"""End to end with streaming: `subtone run` (voice mode, overlay on Xvfb) hears JFK (11 s) through
the PulseAudio virtual microphone, and the first partial caption comes out while he is still
speaking; then exactly one final, after every partial of that utterance."""

from __future__ import annotations

import time

import pytest

from conftest import JFK
from live_daemon import LiveDaemon, env_for, padded_clip, write_config
from subtone.export.evaluation.wer import word_errors

JFK_TEXT = "And so my fellow Americans ask not what your country can do for you ask what you can do for your country"
LEAD_S, SPEECH_S = 1.0, 11.0


@pytest.mark.desktop
@pytest.mark.slow
def test_first_partial_appears_before_the_speaker_finishes(tmp_path, pulse_audio, x_display, whisper_model_dir):
    cfg = write_config(
        tmp_path,
        models={"dir": str(whisper_model_dir)},
        history={"enabled": False, "file": ""},
        trigger={"mode": "voice"},
        vad={"end_silence_ms": 1200},  # JFK pauses ~0.7 s after "ask not": keep it one utterance
        streaming={"enabled": True, "partial_interval_s": 0.5},
    )
    clip = padded_clip(JFK, tmp_path / "jfk.wav", before_s=LEAD_S, after_s=1.5)
    daemon = LiveDaemon(tmp_path, ["--no-tray", "--no-hotkey"], env_for(pulse_audio.server, x_display), cfg)
    try:
        daemon.wait_ready()
        time.sleep(1.0)  # the microphone opens in the background
        played = time.monotonic()
        pulse_audio.play(clip)
        speech_end = played + LEAD_S + SPEECH_S  # monotonic clock, shared with the daemon's "mono"
        finals = daemon.wait_for(daemon.captions, 60, "a final caption")
        captions = daemon.events("caption")
        partials = [c for c in captions if not c["is_final"]]
        assert partials, captions
        print(f"first partial {partials[0]['mono'] - played - LEAD_S:.2f} s after speech start "
              f"({speech_end - partials[0]['mono']:.2f} s before it ended): {partials[0]['text']!r}; "
              f"final {finals[0]['mono'] - speech_end:.2f} s after speech end (incl. vad.end_silence_ms)")
        assert partials[0]["mono"] < speech_end - 3.0, (partials[0]["mono"] - played, partials[0]["text"])
        assert len(finals) == 1 and captions[-1]["is_final"], captions
        assert all(p["utterance_id"] == finals[0]["utterance_id"] for p in partials)
        assert word_errors(JFK_TEXT, finals[0]["text"]).wer <= 0.25, finals[0]["text"]
        assert "Traceback" not in daemon.log(), daemon.log()[-3000:]
    finally:
        code = daemon.terminate()
    assert code == 0, daemon.log()[-3000:]
