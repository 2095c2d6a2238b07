"""A short soak (2.5 min of asr-dev speech and room noise) through the real voice trigger and
recognizer worker, streaming on: no lost or duplicate finals, no errors, memory that stays put.
bench/soak.py runs the long version (docs/benchmarks.md, "Streaming and soak")."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from soak import run_soak  # noqa: E402

from conftest import TEST_MODEL  # noqa: E402
from subtone.config import load_settings  # noqa: E402


@pytest.mark.slow
def test_short_soak_loses_no_final_and_does_not_grow(tmp_path, whisper_model_dir, shared_data):
    config = tmp_path / "config.toml"
    config.write_text("")
    settings = load_settings(config, {"models.dir": str(whisper_model_dir), "asr.model": TEST_MODEL, "streaming.enabled": True})
    report = run_soak(settings, seconds=150.0, warmup_s=60.0, sample_every_s=15.0)
    print(report.summary())
    assert report.utterances_ended >= 15, report.summary()
    assert report.lost_finals == 0 and report.duplicate_finals == 0, report.summary()
    assert report.errors == 0, report.summary()
    assert report.finals + sum(report.skipped.values()) >= report.utterances_ended
    assert report.rss_growth < 0.10, report.summary()
