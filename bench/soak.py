"""Soak: hours of audio through the real pipeline (voice trigger → recognizer worker → captions).

Real speech clips from asr-dev (in a fixed shuffled order, looped) alternate with 1-4 s of quiet
room noise (-70 dBFS), generated block by block (8 h of audio is never held in memory), cut by
the real VadSegmenter and decoded by the real RecognizerWorker with the configured models and
streaming settings. No microphone, no overlay: blocks go in as fast as the worker keeps up (the
feeder waits while a finished utterance waits for decoding, so nothing is dropped for speed).

Every utterance that ended must come out as exactly one final caption or a logged reason
(blip, no speech, failed, merged into an earlier one); "lost" counts the rest. Resident memory (VmRSS) and queue
depths are sampled over time into a CSV; growth is measured after the warm-up.

    python bench/soak.py --minutes 10                               # how fast does it go here?
    python bench/soak.py --hours 8 --max-wall-minutes 58 --csv docs/soak.csv --png docs/soak_rss.png
    python bench/soak.py --minutes 10 --wait-for-partials --config partials.toml   # partials too

Fed as fast as it goes, utterances open and end faster than a partial decode, so partials
rarely start; --wait-for-partials makes the feeder wait until every due partial has started
(what real pace gives), which exercises the partial path at the cost of speed.
"""

from __future__ import annotations

import argparse
import csv
import logging
import random
import resource
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from asr_clips import ASR_DEV_MANIFEST, read_clips

from subtone.config import Settings, load_settings
from subtone.service.audio import SAMPLE_RATE
from subtone.service.app.controller import load_models
from subtone.service.events import AudioBlock, UtteranceEnded, UtteranceStarted
from subtone.export.evaluation.pipeline_replay import CaptionLog, blocks_of, feed_segmented
from subtone.service.captioning.worker import RecognizerWorker
from subtone.service.captioning.partials import PartialPolicy
from subtone.service.trigger.vad_segmenter import VadSegmenter

NOISE_DBFS = -70.0


def rss_mb() -> float:
    """Resident memory of this process now (VmRSS, MiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass(frozen=True)
class SoakSample:
    audio_s: float
    wall_s: float
    rss_mb: float
    utterances: int
    finals: int
    partials: int
    pending: int
    """Finished utterances waiting for the worker."""
    open: int
    """Utterances still being spoken."""
    errors: int


@dataclass
class SoakReport:
    audio_s: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    utterances_ended: int = 0
    finals: int = 0
    empty_finals: int = 0
    partials: int = 0
    preempted: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    lost_finals: int = 0
    duplicate_finals: int = 0
    errors: int = 0
    warnings: int = 0
    max_pending: int = 0
    warmup_s: float = 0.0
    rss_warm_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_max_after_warmup_mb: float = 0.0
    samples: list[SoakSample] = field(default_factory=list)

    @property
    def rss_growth(self) -> float:
        """End of run vs end of warm-up, as a fraction."""
        return (self.rss_end_mb - self.rss_warm_mb) / self.rss_warm_mb if self.rss_warm_mb else float("nan")

    def summary(self) -> str:
        return (
            f"{self.audio_s / 3600:.2f} h of audio in {self.wall_s / 60:.1f} min "
            f"({self.audio_s / max(self.wall_s, 1e-9):.1f}x real time, {self.cpu_s / max(self.audio_s, 1e-9):.3f} CPU s per audio s); "
            f"{self.utterances_ended} utterances ended, {self.finals} finals ({self.empty_finals} empty), "
            f"{self.partials} partials ({self.preempted} partial decodes preempted), skipped {self.skipped}, "
            f"lost finals {self.lost_finals}, duplicate finals {self.duplicate_finals}, errors {self.errors}, "
            f"warnings {self.warnings}, max pending {self.max_pending}; RSS {self.rss_warm_mb:.0f} MiB after "
            f"{self.warmup_s / 60:.0f} min warm-up → {self.rss_end_mb:.0f} MiB at the end "
            f"({100 * self.rss_growth:+.2f} %), max after warm-up {self.rss_max_after_warmup_mb:.0f} MiB"
        )


class _LevelCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors = self.warnings = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.errors += 1
        else:
            self.warnings += 1


def soak_audio(clips: list[np.ndarray], seconds: float, seed: int = 7, block_ms: int = 30) -> Iterator[AudioBlock]:
    """Speech clips and 1-4 s of room noise, looped in a shuffled order, until `seconds` of audio."""
    rng = random.Random(seed)
    noise_rng = np.random.default_rng(seed)
    order: list[int] = []
    t = 0.0
    while t < seconds:
        if not order:
            order = list(range(len(clips)))
            rng.shuffle(order)
        gap = np.zeros(int(rng.uniform(1.0, 4.0) * SAMPLE_RATE), np.float32)
        speech = clips[order.pop()]
        piece = np.concatenate([gap, speech])
        piece = piece + noise_rng.standard_normal(piece.size).astype(np.float32) * 10 ** (NOISE_DBFS / 20)
        piece = piece[: max(0, int((seconds - t) * SAMPLE_RATE))]
        if piece.size == 0:  # less than one sample left
            break
        yield from blocks_of(piece, block_ms, t0=t)
        t += piece.size / SAMPLE_RATE
    trailing = np.zeros(SAMPLE_RATE, np.float32)  # let the last utterance end by silence
    yield from blocks_of(trailing, block_ms, t0=t)


def run_soak(
    settings: Settings,
    seconds: float,
    warmup_s: float,
    sample_every_s: float = 60.0,
    manifest: Path = ASR_DEV_MANIFEST,
    progress: bool = False,
    wait_for_partials: bool = False,
    max_wall_s: float = 0.0,
) -> SoakReport:
    clips = [c.audio for c in read_clips(manifest)]
    counter = _LevelCounter()
    logging.getLogger().addHandler(counter)
    captions = CaptionLog(keep=False)
    empty = 0
    ended: set[int] = set()
    skipped: dict[int, str] = {}
    lock = threading.Lock()
    models = load_models(settings)

    def on_caption(caption) -> None:
        nonlocal empty
        captions(caption)
        if caption.is_final and not caption.text:
            empty += 1

    def on_skip(uid: int, reason: str) -> None:
        with lock:
            skipped[uid] = reason

    worker = RecognizerWorker(
        lambda: (models.transcriber, models.emotion),
        on_caption,
        max_pending=settings.trigger.max_pending_utterances,
        partial_policy=PartialPolicy.from_settings(settings.streaming),
        on_skip=on_skip,
    )
    segmenter = VadSegmenter(settings.vad)
    report = SoakReport(warmup_s=warmup_s)
    worker.start()
    worker.models_ready.wait()
    if worker.model_error:
        raise SystemExit(f"speech model unavailable: {worker.model_error}")
    # ONNX Runtime's arenas grow to the largest window seen: decode the longest clip once first,
    # so memory growth after the warm-up means a leak, not a first long utterance.
    models.transcriber.transcribe(max(clips, key=len))
    state = {"audio_s": 0.0, "next_sample": 0.0, "open": 0}
    wall0, cpu0 = time.monotonic(), time.process_time()

    def sample() -> None:
        stats = worker.stats()
        s = SoakSample(
            audio_s=round(state["audio_s"], 1),
            wall_s=round(time.monotonic() - wall0, 1),
            rss_mb=round(rss_mb(), 1),
            utterances=len(ended),
            finals=sum(captions.finals.values()),
            partials=captions.partials,
            pending=stats.pending,
            open=state["open"],
            errors=counter.errors,
        )
        report.samples.append(s)
        if progress:
            print(f"  {s.audio_s / 60:7.1f} min audio  {s.wall_s / 60:6.1f} min wall  RSS {s.rss_mb:7.1f} MiB  "
                  f"finals {s.finals}  partials {s.partials}  errors {s.errors}", flush=True)

    def hold() -> None:
        # As fast as it goes, but never faster than the worker decodes finals (and, with
        # wait_for_partials, starts every partial that is due, as it would at real pace).
        while True:
            pending = worker.stats().pending
            report.max_pending = max(report.max_pending, pending)
            if pending == 0 and not (wait_for_partials and worker.partial_due()):
                return
            time.sleep(0.002)

    def on_event(event) -> None:
        if isinstance(event, UtteranceStarted):
            state["open"] += 1
        elif isinstance(event, UtteranceEnded):
            state["open"] -= 1
            ended.add(event.utterance_id)

    def blocks() -> Iterator[AudioBlock]:
        for block in soak_audio(clips, seconds):
            if max_wall_s and time.monotonic() - wall0 > max_wall_s:
                return  # out of time: the report says how much audio went in
            state["audio_s"] = block.t_start + block.samples.size / SAMPLE_RATE
            if state["audio_s"] >= state["next_sample"]:
                sample()
                state["next_sample"] += sample_every_s
            yield block

    try:
        feed_segmented(segmenter, worker.submit, blocks(), pace=0.0, hold=hold, on_event=on_event)
    finally:
        worker.stop(120)
        logging.getLogger().removeHandler(counter)
    sample()
    report.audio_s = state["audio_s"]
    report.wall_s = time.monotonic() - wall0
    report.cpu_s = time.process_time() - cpu0
    stats = worker.stats()
    report.utterances_ended = len(ended)
    report.finals = sum(captions.finals.values())
    report.empty_finals = empty
    report.partials = captions.partials
    report.preempted = stats.preempted
    reasons: dict[str, int] = {}
    for reason in skipped.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    report.skipped = reasons
    report.lost_finals = len(ended - set(captions.finals) - set(skipped))
    report.duplicate_finals = sum(n - 1 for n in captions.finals.values() if n > 1)
    report.errors, report.warnings = counter.errors, counter.warnings
    after = [s for s in report.samples if s.audio_s >= warmup_s]
    if after:
        report.rss_warm_mb = after[0].rss_mb
        report.rss_end_mb = after[-1].rss_mb
        report.rss_max_after_warmup_mb = max(s.rss_mb for s in after)
    return report


def write_csv(report: SoakReport, path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(asdict(report.samples[0])))
        writer.writeheader()
        for s in report.samples:
            writer.writerow(asdict(s))


def plot(report: SoakReport, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = [s.audio_s / 3600 for s in report.samples]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    ax.plot(hours, [s.rss_mb for s in report.samples], color="tab:blue", label="resident memory (VmRSS)")
    ax.axvline(report.warmup_s / 3600, color="grey", linestyle="--", label="end of warm-up")
    if report.rss_warm_mb:
        ax.axhline(report.rss_warm_mb * 1.05, color="tab:red", linestyle=":", label="+5 % over warm-up")
    ax.set_ylabel("MiB")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax2.plot(hours, [s.pending for s in report.samples], label="finished utterances waiting")
    ax2.plot(hours, [s.open for s in report.samples], label="open utterances")
    ax2.set_xlabel("hours of audio fed")
    ax2.set_ylabel("queue depth")
    ax2.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    length = p.add_mutually_exclusive_group()
    length.add_argument("--hours", type=float)
    length.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--warmup-minutes", type=float, help="default: 10 %% of the run, at most 15 min")
    p.add_argument("--sample-every-s", type=float, default=60.0, help="RSS sample interval, in seconds of audio")
    p.add_argument("--wait-for-partials", action="store_true",
                   help="the feeder also waits until every due partial has started (exercises partials; slower)")
    p.add_argument("--max-wall-minutes", type=float, default=0.0, help="stop feeding after this long (0: no limit)")
    p.add_argument("--config", type=Path)
    p.add_argument("--csv", type=Path)
    p.add_argument("--png", type=Path)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    seconds = args.hours * 3600 if args.hours else args.minutes * 60
    warmup = args.warmup_minutes * 60 if args.warmup_minutes is not None else min(900.0, 0.1 * seconds)
    settings = load_settings(user_file=args.config)
    print(f"soak: {seconds / 60:.0f} min of audio, warm-up {warmup / 60:.1f} min, streaming "
          f"{'on' if settings.streaming.enabled else 'off'}", flush=True)
    report = run_soak(settings, seconds, warmup, args.sample_every_s, progress=True,
                      wait_for_partials=args.wait_for_partials, max_wall_s=args.max_wall_minutes * 60)
    print(report.summary())
    print(f"max RSS (getrusage): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if args.csv:
        write_csv(report, args.csv)
    if args.png:
        plot(report, args.png, f"subtone soak: {report.audio_s / 3600:.2f} h of audio, pipeline without microphone/overlay")
    ok = report.lost_finals == 0 and report.duplicate_finals == 0 and report.errors == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
