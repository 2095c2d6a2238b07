"""Language detection and translation of a multilingual Whisper model, on labelled clips.

    python bench/language.py --model whisper-base-int8 --json runs/language.json

1. Detection: every clip of the manifests (asr-dev English + Korean by default) transcribed with
   `[asr] language = "auto"`, twice: each clip alone (a fresh conversation: no smoothing) and all
   clips as one conversation per manifest, in manifest order (speakers take turns in blocks, so the
   smoothing of subtone.service.asr.whisper.language is what a user would get). Share detected
   right, per language, and the clips got wrong.
2. Translation: every `--translate-stride`-th Korean clip with `task = "translate"`: the share of
   outputs that are English (letters mostly Latin) and a few examples.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from asr_clips import ASR_DEV_MANIFEST, make_recognizer, make_settings, read_clips

KOREAN_MANIFEST = ASR_DEV_MANIFEST.with_name("manifest-ko.jsonl")


def latin_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    return sum(ch.isascii() for ch in letters) / len(letters) if letters else 0.0


def detection(args: argparse.Namespace, clips_by_manifest: dict[str, list]) -> dict:
    settings = make_settings(args.config, {"asr.language": "auto", "runtime.providers": ["cpu"]})
    results: dict = {}
    for mode in ("each clip alone", "one conversation per manifest"):
        right, total, wrong = {}, {}, []
        for manifest, clips in clips_by_manifest.items():
            recognizer = make_recognizer(settings, args.model)
            for clip in clips:
                if mode == "each clip alone":
                    recognizer.language_smoother.recent = None
                heard = recognizer.transcribe(clip.audio).language
                total[clip.lang] = total.get(clip.lang, 0) + 1
                if heard == clip.lang:
                    right[clip.lang] = right.get(clip.lang, 0) + 1
                else:
                    wrong.append({"audio": clip.audio_path.name, "expected": clip.lang, "heard": heard,
                                  "seconds": round(clip.seconds, 2)})
        results[mode] = {"right": right, "total": total, "wrong": wrong,
                         "share": {lang: right.get(lang, 0) / n for lang, n in total.items()}}
        shares = ", ".join(f"{lang} {right.get(lang, 0)}/{n} ({100 * right.get(lang, 0) / n:.1f} %)"
                           for lang, n in total.items())
        print(f"detection, {mode}: {shares}; wrong: {[(w['audio'], w['heard']) for w in wrong]}")
    return results


def translation(args: argparse.Namespace) -> dict:
    settings = make_settings(args.config, {"asr.language": "auto", "asr.task": "translate", "runtime.providers": ["cpu"]})
    recognizer = make_recognizer(settings, args.model)
    clips = read_clips(KOREAN_MANIFEST, stride=args.translate_stride)
    rows = [{"audio": c.audio_path.name, "reference_ko": c.text, "english": recognizer.transcribe(c.audio).text}
            for c in clips]
    english = [r for r in rows if latin_share(r["english"]) >= 0.9]
    print(f"translation: {len(english)}/{len(rows)} outputs in English ({100 * len(english) / len(rows):.0f} %)")
    for r in rows[:5]:
        print(f"  {r['reference_ko']}\n    → {r['english']}")
    return {"english": len(english), "total": len(rows), "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="whisper-base-int8")
    parser.add_argument("--manifest", type=Path, action="append", default=[])
    parser.add_argument("--config", type=Path, help="settings file instead of the user config")
    parser.add_argument("--translate-stride", type=int, default=9, help="every Nth Korean clip is translated")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    manifests = args.manifest or [ASR_DEV_MANIFEST, KOREAN_MANIFEST]
    clips_by_manifest = {str(m): read_clips(m) for m in manifests}
    report = {"model": args.model, "detection": detection(args, clips_by_manifest), "translation": translation(args)}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
