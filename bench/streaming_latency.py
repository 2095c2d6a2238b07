"""Caption latency with and without streaming partials, side by side in one run.

Utterances of about 2, 5 and 10 s are whole asr-dev clips (1.5-2.6 s, 4.0-6.0 s, 8.5-11.5 s:
each ends where its speaker stopped, as a released key or the voice trigger would end it),
played into the real RecognizerWorker as push-to-talk does: UtteranceStarted, 30 ms blocks at
real pace, UtteranceEnded at the key release. For each utterance every worker (streaming on and
off, for each model in --models) gets the same audio one after the other. Reported, p50/p95:

- first text: speech start → first caption of any kind (a partial when streaming, else the final);
- final: speech end (key release) → final caption;
- CPU: process CPU seconds per second of audio, each way.

    python bench/streaming_latency.py                       # 6 utterances per length
    python bench/streaming_latency.py --n 3 --models whisper-tiny.en,whisper-tiny.en-int8 --json out.json
    python bench/streaming_latency.py --wer --pace 4         # final WER on all of asr-dev, both ways

In voice mode the VAD adds `vad.end_silence_ms` (600 ms) before the utterance ends; that is not
counted here (push-to-talk has no such wait).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from asr_clips import ASR_DEV_MANIFEST, make_recognizer, make_settings, parse_overrides, read_clips

from subtone.service.audio import SAMPLE_RATE
from subtone.export.evaluation.pipeline_replay import CaptionLog, feed_utterance
from subtone.service.captioning.worker import RecognizerWorker
from subtone.service.captioning.partials import PartialPolicy
from subtone.export.evaluation.text_normalize import normalize_english
from subtone.export.evaluation.wer import count_errors

BUCKETS_S = {2.0: (1.5, 2.6), 5.0: (4.0, 6.0), 10.0: (8.5, 11.5)}
"""Nominal utterance length → clip durations that count as it."""
MODES = ("streaming", "no streaming")


@dataclass(frozen=True)
class Sample:
    model: str
    mode: str
    length_s: float
    """The bucket (2, 5 or 10); the clip's own length is audio_s."""
    audio_s: float
    first_text_s: float
    final_s: float
    cpu_s: float
    partials: int


def run_one(worker: RecognizerWorker, log: CaptionLog, uid: int, audio: np.ndarray, pace: float) -> Sample | None:
    cpu0 = time.process_time()
    t_start, t_end = feed_utterance(worker.submit, uid, audio, pace=pace)
    if not log.wait_final(uid, 120):
        raise RuntimeError(f"no final caption for utterance {uid} within 120 s")
    cpu = time.process_time() - cpu0
    records = log.of(uid)
    final = next(r for r in records if r.caption.is_final)
    partials = [r for r in records if not r.caption.is_final]
    return Sample("", "", 0.0, audio.size / SAMPLE_RATE, records[0].t - t_start, final.t - t_end, cpu, len(partials))


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", type=Path, default=ASR_DEV_MANIFEST)
    p.add_argument("--models", default="", help="comma-separated model names (default: asr.model)")
    p.add_argument("--config", type=Path)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--n", type=int, default=6, help="utterances per length")
    p.add_argument("--pace", type=float, default=1.0, help="audio speed (1 = real time)")
    p.add_argument("--wer", action="store_true", help="instead: final WER over the whole manifest, both ways")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    settings = make_settings(args.config, parse_overrides(args.set))
    policy = PartialPolicy.from_settings(settings.streaming) or PartialPolicy()
    names = [m.strip() for m in args.models.split(",") if m.strip()] or [settings.asr.model]
    recognizers = {name: make_recognizer(settings, name) for name in names}
    variants = [(name, mode) for name in names for mode in MODES]
    logs = {v: CaptionLog() for v in variants}
    workers = {
        (name, mode): RecognizerWorker(
            lambda r=recognizers[name]: (r, None), logs[(name, mode)], partial_policy=policy if mode == "streaming" else None
        )
        for name, mode in variants
    }
    for w in workers.values():
        w.start()
        w.models_ready.wait()
    clips = read_clips(args.manifest)
    uid = iter(range(1, 1_000_000))
    providers = {r.session_info.provider for r in recognizers.values()}
    print(f"models {names} on {providers}, partial every {policy.interval_s} s, pace {args.pace}")
    try:
        for v in variants:  # warm-up: first-run allocations and shapes
            run_one(workers[v], logs[v], next(uid), clips[0].audio[: 3 * SAMPLE_RATE], pace=0)
        if args.wer:
            result = wer_both_ways(workers, logs, variants, clips, uid, args.pace)
        else:
            result = latency_both_ways(workers, logs, variants, clips, uid, args.n, args.pace)
    finally:
        for w in workers.values():
            w.stop()
    if args.json:
        args.json.write_text(json.dumps({"models": names, "providers": sorted(providers),
                                         "interval_s": policy.interval_s, "pace": args.pace, **result}, indent=2))
    return 0


def latency_both_ways(workers, logs, variants, clips, uid, n: int, pace: float) -> dict:
    samples: list[Sample] = []
    for length, (lo, hi) in BUCKETS_S.items():
        for clip in [c for c in clips if lo <= c.seconds <= hi][:n]:
            for name, mode in variants:
                s = run_one(workers[(name, mode)], logs[(name, mode)], next(uid), clip.audio, pace)
                samples.append(Sample(name, mode, length, s.audio_s, s.first_text_s, s.final_s, s.cpu_s, s.partials))
    print()
    print("| utterance | model | mode | n | first text p50 / p95 (ms, from speech start) | "
          "final p50 / p95 (ms, from speech end) | partials / utt | CPU s per audio s |")
    print("|---|---|---|---|---|---|---|---|")
    for length in BUCKETS_S:
        for name, mode in variants:
            rows = [s for s in samples if (s.model, s.mode) == (name, mode) and s.length_s == length]
            if not rows:
                continue
            first = [1000 * s.first_text_s for s in rows]
            final = [1000 * s.final_s for s in rows]
            cpu = sum(s.cpu_s for s in rows) / sum(s.audio_s for s in rows)
            parts = sum(s.partials for s in rows) / len(rows)
            print(f"| ~{length:.0f} s | {name} | {mode} | {len(rows)} | {pct(first, 50):.0f} / {pct(first, 95):.0f} | "
                  f"{pct(final, 50):.0f} / {pct(final, 95):.0f} | {parts:.1f} | {cpu:.3f} |")
    return {"samples": [asdict(s) for s in samples]}


def wer_both_ways(workers, logs, variants, clips, uid, pace: float) -> dict:
    totals = {}
    for clip in clips:
        for v in variants:
            u = next(uid)
            feed_utterance(workers[v].submit, u, clip.audio, pace=pace)
            if not logs[v].wait_final(u, 120):
                raise RuntimeError(f"no final for {clip.audio_path}")
            hyp = logs[v].of(u)[-1].caption.text
            counts = count_errors(normalize_english(clip.text).split(), normalize_english(hyp).split())
            errors, words = totals.get(v, (0, 0))
            totals[v] = (errors + counts.errors, words + counts.ref_words)
    wer = {f"{name} / {mode}": errors / words for (name, mode), (errors, words) in totals.items()}
    for (name, mode), (errors, words) in totals.items():
        print(f"{name} / {mode}: WER {100 * errors / words:.2f} % over {len(clips)} clips ({words} words), "
              f"{logs[(name, mode)].partials} partials")
    return {"wer": wer}


if __name__ == "__main__":
    sys.exit(main())
