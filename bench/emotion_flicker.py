"""Emotion on partial captions: how often the shown color changes within one utterance.

Each clip is played into the real RecognizerWorker as push-to-talk does (30 ms blocks, real pace,
partials every 0.5 s), with whisper-base-int8 and each emotion model in turn; a "change" is the
shown color (None while unsure or not yet judged) moving from one label to another, partials and
the final together. Reported per model: utterances with any change, changes per utterance, and
how many finals showed a color.

    python bench/emotion_flicker.py            # 12 clips, ≈ 3 × 1.5 min
    python bench/emotion_flicker.py --clips 24
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RUNS = (("emotion-cnn", 0.0), ("emotion-cnn", None), ("emotion-whisper-base", None))
"""(model, [emotion] min_confidence): the CNN as it shipped before issue 12 (every guess colored),
then both models with the default threshold."""


def clips(n: int) -> list[tuple[Path, str]]:
    """Held-out RAVDESS actors (never trained on), the six emotions in turn across the actors, and
    a quarter as many LJSpeech narration clips (truth "neutral"); (path, true emotion)."""
    from subtone.service.events import EMOTIONS

    split = json.loads((ROOT / "export" / "emotion" / "speaker_split.json").read_text())
    rows = [r for r in csv.DictReader((SHARED / "emotion" / "manifest.csv").open()) if r["speaker"] in split["test"]]
    picked: list[tuple[Path, str]] = []
    for i in range(n - n // 4):
        speaker, emotion = split["test"][i % len(split["test"])], EMOTIONS[i % len(EMOTIONS)]
        match = [r for r in rows if r["speaker"] == speaker and r["emotion"] == emotion]
        picked.append((SHARED / "emotion" / match[(i // len(EMOTIONS)) % len(match)]["path"], emotion))
    lj = [SHARED / "asr-dev" / json.loads(line)["audio"] for line in (SHARED / "asr-dev" / "manifest.jsonl").open()
          if json.loads(line)["speaker"] == "LJ"]
    return picked + [(p, "neutral") for p in lj[: n // 4]]


def shown_sequence(records, utterance_id: int) -> list[str | None]:
    out = []
    for r in records:
        c = r.caption
        if c.utterance_id == utterance_id:
            out.append(None if c.emotion is None or c.emotion_uncertain else c.emotion)
    return out


def changes(sequence: list[str | None]) -> int:
    """Color-to-another-color changes (a color appearing or going grey is counted apart)."""
    shown = [s for s in sequence if s is not None]
    return sum(a != b for a, b in zip(shown, shown[1:]))


def dropped_at_final(sequence: list[str | None]) -> bool:
    """A partial showed a color and the final shows none (the final was unsure)."""
    return len(sequence) > 1 and sequence[-1] is None and any(s is not None for s in sequence[:-1])


def run(model: str, min_confidence: float | None, paths: list[tuple[Path, str]]) -> dict:
    from subtone.config import load_settings
    from subtone.export.evaluation.pipeline_replay import CaptionLog, feed_utterance
    from subtone.service.app.controller import load_models
    from subtone.service.audio.file import load_audio
    from subtone.service.captioning.partials import PartialPolicy
    from subtone.service.captioning.worker import RecognizerWorker

    overrides = {"asr.model": "whisper-base-int8", "emotion.model": model, "runtime.providers": ["cpu"]}
    if min_confidence is not None:
        overrides["emotion.min_confidence"] = min_confidence
    settings = load_settings(overrides=overrides)
    models = load_models(settings)
    log = CaptionLog()
    worker = RecognizerWorker(lambda: (models.transcriber, models.emotion), log,
                              partial_policy=PartialPolicy.from_settings(settings.streaming))
    worker.start()
    assert worker.models_ready.wait(120) and worker.model_error is None
    per = []
    try:
        for i, (path, truth) in enumerate(paths, start=1):
            feed_utterance(worker.submit, i, load_audio(path), pace=1.0)
            log.wait_final(i, 60)
            seq = shown_sequence(log.records, i)
            per.append({"clip": path.name, "truth": truth, "shown": seq, "changes": changes(seq)})
    finally:
        worker.stop()
    n = len(per)
    return {"model": model, "min_confidence": settings.emotion.min_confidence, "utterances": n,
            "partials_with_a_color": sum(s is not None for p in per for s in p["shown"][:-1]),
            "partials": sum(len(p["shown"]) - 1 for p in per),
            "with_a_change": sum(p["changes"] > 0 for p in per),
            "changes_per_utterance": sum(p["changes"] for p in per) / n,
            "finals_with_a_color": sum(p["shown"][-1] is not None for p in per if p["shown"]),
            "finals_colored_right": sum(p["shown"][-1] == p["truth"] for p in per if p["shown"]),
            "color_dropped_at_final": sum(dropped_at_final(p["shown"]) for p in per),
            "per_clip": per}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    paths = clips(args.clips)
    results = [run(m, c, paths) for m, c in RUNS]
    for r in results:
        print(f"{r['model']:22s} min_confidence {r['min_confidence']:.2f}: utterances with a color change "
              f"{r['with_a_change']}/{r['utterances']}, changes per utterance {r['changes_per_utterance']:.2f}, "
              f"partials with a color {r['partials_with_a_color']}/{r['partials']}, finals with a color "
              f"{r['finals_with_a_color']}/{r['utterances']} ({r['finals_colored_right']} right), "
              f"a partial's color gone at the final {r['color_dropped_at_final']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
