"""`subtone transcribe FILE…`: captions for audio files, as text or JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

from subtone.service.audio import SAMPLE_RATE
from subtone.service.audio.file import load_audio
from subtone.config import settings_from_args
from subtone.service.emotion.recognizer import EmotionResult, describe, load_emotion_recognizer
from subtone.service.errors import SubtoneError
from subtone.service.models.registry import load_model
from subtone.service.asr.recognizer import Transcript, create_recognizer


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transcribe",
        help="print what is said in audio files",
        description="Transcribe audio files (any rate, mono or stereo) with the configured model.",
        epilog="examples: subtone transcribe --json talk.wav > talk.jsonl\n          subtone transcribe --language ko --task translate 회의.wav\n"
               "          subtone transcribe --session part1.wav part2.wav part3.wav   # one conversation",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="WAV, FLAC, OGG or MP3 files")
    p.add_argument("--json", action="store_true", help="one JSON object per file: text, duration, timings")
    p.add_argument("--model", help="model name from models_onnx/manifest.json (default: asr.model)")
    p.add_argument("--language", metavar="CODE", help="language spoken: auto (detect) or a code such as en, ko (default: asr.language)")
    p.add_argument("--task", choices=("transcribe", "translate"), help="translate: English captions from any language (default: asr.task)")
    p.add_argument("--session", action="store_true",
                   help="the files are consecutive parts of one conversation, in the given order: the emotion model "
                        "adapts to the voice from each file to the next (without it, every file is judged alone)")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class FileResult:
    path: str
    audio_s: float
    transcript: Transcript
    feeling: EmotionResult | None
    timings: dict[str, float]


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args, **{"asr.model": args.model, "asr.language": args.language, "asr.task": args.task})
    entry = load_model(settings.models_dir(), settings.asr.model)
    recognizer = create_recognizer(entry, settings)
    emotion, why_not = load_emotion_recognizer(settings, recognizer)
    if why_not:
        print(f"subtone: warning: {why_not}", file=sys.stderr)
    failures = 0
    for path in args.files:
        try:
            if emotion is not None and not args.session and hasattr(emotion, "reset_sessions"):
                emotion.reset_sessions()  # independent files: no voice carried over
            result = transcribe_file(path, recognizer, emotion)
        except SubtoneError as exc:
            print(f"subtone: {exc}", file=sys.stderr)
            failures += 1
            continue
        if args.json:
            print(json.dumps(json_row(result, entry.name, recognizer.session_info.provider, emotion is not None),
                             ensure_ascii=False), flush=True)
        else:
            prefix = f"{path}: " if len(args.files) > 1 else ""
            suffix = f"  [{describe(result.feeling)}]" if result.feeling else ""
            print(f"{prefix}{result.transcript.text}{suffix}", flush=True)
    return 1 if failures else 0


def transcribe_file(path: str, recognizer, emotion) -> FileResult:
    t0 = time.perf_counter()
    audio = load_audio(path)
    t1 = time.perf_counter()
    transcript = recognizer.transcribe(audio)
    t2 = time.perf_counter()
    feeling = emotion.classify(audio, encoder_states=transcript.encoder_states) if emotion else None
    timings = {"load_s": t1 - t0, "asr_s": t2 - t1}
    if emotion:
        timings["emotion_s"] = time.perf_counter() - t2
    return FileResult(str(path), audio.size / SAMPLE_RATE, transcript, feeling, timings)


def json_row(r: FileResult, model: str, provider: str, with_emotion: bool) -> dict:
    row = {
        "file": r.path,
        "text": r.transcript.text,
        "language": r.transcript.language,
        "language_prob": round(r.transcript.language_prob, 4),
        "duration_s": round(r.audio_s, 3),
        "model": model,
        "provider": provider,
        "timings": {k: round(v, 4) for k, v in r.timings.items()},
    }
    if with_emotion:
        f = r.feeling
        row["emotion"] = f.label if f else None
        row["emotion_scores"] = {k: round(v, 4) for k, v in f.scores.items()} if f else {}
        row["emotion_uncertain"] = f.uncertain if f else None
        if f and f.intensity is not None:
            row["emotion_intensity"] = round(f.intensity, 4)
    return row
