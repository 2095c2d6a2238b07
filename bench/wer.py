"""Word (or, for Korean, character) error rate of a subtone recognizer over a manifest.jsonl, per source and in total.

    python bench/wer.py                                  # ../shared/data/asr-dev, the configured model
    python bench/wer.py --compare-trim --json wer.json   # trim_encoder on and off in one run
    python bench/wer.py --manifest other/manifest.jsonl --model whisper-tiny.en --set runtime.threads=2
    python bench/wer.py --manifest ../shared/data/asr-dev/manifest-ko.jsonl --model whisper-base-int8

English texts go through subtone.export.evaluation.text_normalize.normalize_english and are
compared word by word; rows with `lang` ko (or ja, zh) are compared by characters
(subtone.export.evaluation.cer: letters and digits only). Totals add the error counts of every
clip and divide once.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from asr_clips import (
    ASR_DEV_MANIFEST,
    Clip,
    make_recognizer,
    make_settings,
    parse_overrides,
    read_clips,
    source_order,
)

from subtone.config import ConfigError
from subtone.export.evaluation.cer import scored_characters
from subtone.service.errors import SubtoneError
from subtone.export.evaluation.text_normalize import normalize_english
from subtone.export.evaluation.wer import ErrorCounts, align, count_errors, format_alignment

TOTAL = "TOTAL"


@dataclass(frozen=True)
class ClipResult:
    clip: Clip
    hypothesis: str
    counts: ErrorCounts


CHARACTER_LANGUAGES = frozenset({"ko", "ja", "zh"})
"""Scored by characters (CER): spacing is not a reliable word boundary there."""


def units(text: str, lang: str) -> list[str]:
    """What is compared: characters for CHARACTER_LANGUAGES, normalized English words otherwise."""
    return scored_characters(text) if lang in CHARACTER_LANGUAGES else normalize_english(text).split()


def score(clips: Sequence[Clip], hypotheses: Sequence[str]) -> list[ClipResult]:
    return [ClipResult(c, h, count_errors(units(c.text, c.lang), units(h, c.lang))) for c, h in zip(clips, hypotheses)]


def by_source(results: Sequence[ClipResult]) -> dict[str, ErrorCounts]:
    """Summed counts per source, in order of appearance, then TOTAL."""
    table = {s: sum((r.counts for r in results if r.clip.source == s), ErrorCounts())
             for s in source_order([r.clip for r in results])}
    table[TOTAL] = sum((r.counts for r in results), ErrorCounts())
    return table


def print_table(variants: dict[str, list[ClipResult]]) -> None:
    print(f"{'variant':<22} {'source':<24} {'clips':>5} {'units':>6} {'ERR %':>7} {'sub':>4} {'del':>4} {'ins':>4}"
          "   (units: words; characters for ko/ja/zh, i.e. WER or CER)")
    for name, results in variants.items():
        clips_per_source = {s: sum(r.clip.source == s for r in results) for s in source_order([r.clip for r in results])}
        clips_per_source[TOTAL] = len(results)
        for source, c in by_source(results).items():
            print(f"{name:<22} {source:<24} {clips_per_source[source]:>5} {c.ref_words:>6} {100 * c.wer:>7.2f} "
                  f"{c.substitutions:>4} {c.deletions:>4} {c.insertions:>4}")


def to_json(variants: dict[str, list[ClipResult]]) -> dict:
    def counts(c: ErrorCounts) -> dict:
        return {"wer": c.wer, "ref_words": c.ref_words, "substitutions": c.substitutions,
                "deletions": c.deletions, "insertions": c.insertions}

    return {
        name: {
            "sources": {s: counts(c) for s, c in by_source(results).items()},
            "clips": [{"audio": str(r.clip.audio_path), "source": r.clip.source, "reference": r.clip.text,
                       "hypothesis": r.hypothesis, **counts(r.counts)} for r in results],
        }
        for name, results in variants.items()
    }


def run(args: argparse.Namespace) -> int:
    overrides = parse_overrides(args.set)
    if args.compare_trim:
        variant_overrides = {"trim_encoder=on": {"asr.whisper.trim_encoder": True},
                             "trim_encoder=off": {"asr.whisper.trim_encoder": False}}
    else:
        variant_overrides = {"configured": {}}
    clips = read_clips(args.manifest, args.limit, args.stride)
    seconds = sum(c.seconds for c in clips)
    variants: dict[str, list[ClipResult]] = {}
    model = ""
    for name, extra in variant_overrides.items():
        settings = make_settings(args.config, {**overrides, **extra})
        model = args.model or settings.asr.model
        recognizer = make_recognizer(settings, model)
        if name == "configured":
            name = f"trim_encoder={'on' if settings.asr.whisper.trim_encoder else 'off'}"
        hypotheses = [recognizer.transcribe(c.audio).text for c in clips]
        variants[name] = score(clips, hypotheses)
    print(f"manifest {args.manifest} ({len(clips)} clips, {seconds:.1f} s of audio), model {model}")
    print_table(variants)
    if args.show_errors:
        for name, results in variants.items():
            print(f"\nerrors, {name}:")
            for r in results:
                if r.counts.errors:
                    words = align(units(r.clip.text, r.clip.lang), units(r.hypothesis, r.clip.lang))
                    print(f"  {r.clip.audio_path.name}: {format_alignment(words)}")
    if args.json:
        report = {"manifest": str(args.manifest), "model": model, "clips": len(clips),
                  "audio_seconds": seconds, "variants": to_json(variants)}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--manifest", type=Path, default=ASR_DEV_MANIFEST, help="manifest.jsonl (default: asr-dev)")
    parser.add_argument("--model", default="", help="model name in models_onnx/manifest.json (default: asr.model)")
    parser.add_argument("--config", type=Path, help="settings file instead of the user config")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting override, e.g. runtime.threads=2 (repeatable)")
    parser.add_argument("--compare-trim", action="store_true", help="score asr.whisper.trim_encoder on and off in one run")
    parser.add_argument("--limit", type=int, default=0, help="only the first N clips")
    parser.add_argument("--stride", type=int, default=1, help="every Nth clip (all speakers, fewer clips)")
    parser.add_argument("--show-errors", action="store_true", help="print the aligned errors of every clip")
    parser.add_argument("--json", type=Path, help="also write the results (per clip, per source) here")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (SubtoneError, ConfigError) as exc:
        print(f"wer: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
