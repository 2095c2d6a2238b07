"""MODEL_CARD.md for the shipped emotion model: data, licences, metrics, limits."""

from __future__ import annotations

import json
from pathlib import Path

from subtone.export.emotion.data import LABELS


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _loco(loco: dict, direction: str) -> str:
    found = loco.get(direction, {})
    if "accuracy" not in found:
        return "n/a"
    return f"{_pct(found['accuracy'])} / {found['macro_f1']:.3f}"


def _newest(runs: Path, pattern: str) -> dict:
    found = sorted(runs.glob(pattern), key=lambda p: p.stat().st_mtime)
    return json.loads(found[-1].read_text()) if found else {}


TARGET_ACCURACY = 0.70


def write_model_card(path: Path, name: str, metrics: dict, size_bytes: int, run_dir: Path, members: int = 1) -> Path:
    test = metrics.get("test", {})
    accuracy = test.get("accuracy")
    target_note = ("" if accuracy is not None and accuracy >= TARGET_ACCURACY
                   else f" (the project's target of {TARGET_ACCURACY:.0%} is not reached)")
    # LOCO comes from the run itself or, when trained separately (--loco-only), the newest such run.
    loco = metrics.get("loco") or _newest(run_dir.parent, "loco-emotion-*/metrics.json").get("loco", {})
    base = _newest(run_dir.parent, "emotion-baseline*/summary.json")
    btest = base.get("test", {})
    bloco = base.get("loco", {})
    per_class = ", ".join(f"{k} {v:.2f}" for k, v in test.get("per_class_f1", {}).items())

    def row(what: str, ours: str, theirs: str) -> str:
        return f"| {what} | {ours} | {theirs} |"

    lines = [
        f"# {name}: speech emotion model (NON-COMMERCIAL)",
        "",
        "Six classes, in this output order: " + ", ".join(f"`{label}`" for label in LABELS) + ".",
        "Input: 16 kHz mono float32 waveform of any length (`audio`, shape [1, samples]); output: six",
        "probabilities (`probs`, [1, 6]). The log-mel front end is inside the graph, so training and runtime",
        "cannot disagree about features.",
        "",
        "## Licence: non-commercial only",
        "",
        "The code of subtone is MIT, but **this model is trained on data licensed for non-commercial use",
        "only**, and carries those terms: RAVDESS (Livingstone & Russo 2018, Zenodo 1188976) is",
        "CC BY-NC-SA 4.0 and TESS (Dupuis & Pichora-Fuller, University of Toronto, 2010,",
        "doi:10.5683/SP2/E8H2MF) is CC BY-NC-ND 4.0. Do not use it in a commercial product.",
        "",
        "## Data",
        "",
        "- RAVDESS actors 1–20 (1,199 clips, two sentences) and TESS (2 female speakers, one carrier phrase).",
        "- Label policy: RAVDESS `calm` → `neutral`; `surprise` / TESS `pleasant surprise` dropped.",
        "- Speaker split (`export/emotion/speaker_split.json`, reused by every run): four RAVDESS actors",
        "  (two female, two male) held out for testing and never used to choose anything. The recipe",
        "  (epochs, ensemble size) was chosen on a dev fold of four other actors; the shipped model then trains",
        "  on all 16 other RAVDESS actors and both TESS speakers, keeping its last epoch.",
        "",
        "## Design",
        "",
        "Log-mel (64 bands, 25 ms / 10 ms) normalised per utterance by its own mean and spread over the",
        "frames that carry sound: a gain change shifts every log-mel value equally and is removed exactly,",
        "so loudness cannot move the decision. A dilated 1-D CNN (3 blocks) with attentive statistics",
        "pooling; trained with gain, noise, speed, colouration, surrounding-silence and SpecAugment",
        f"augmentation. The file holds {members} such network{'s' if members != 1 else ''}, trained from different seeds; they share",
        "the front end and their probabilities are averaged.",
        "",
        "## Metrics (held-out RAVDESS speakers; baseline = the prototype LSTM reproduced, same split)",
        "",
        "| | emotion-cnn | baseline |",
        "|---|---|---|",
        row("accuracy", _pct(test.get("accuracy")), _pct(btest.get("accuracy"))),
        row("macro-F1", f"{test.get('macro_f1', float('nan')):.3f}", f"{btest.get('macro_f1', float('nan')):.3f}"),
        row("same class at −20/−10/0/+10 dB", _pct(metrics.get("gain_stable_share")),
            _pct(btest.get("gain_sweep", {}).get("stable_share"))),
        row("LOCO RAVDESS → TESS accuracy / macro-F1", _loco(loco, "ravdess_to_tess"), _loco(bloco, "ravdess_to_tess")),
        row("LOCO TESS → RAVDESS accuracy / macro-F1", _loco(loco, "tess_to_ravdess"), _loco(bloco, "tess_to_ravdess")),
        "",
        f"Per-class F1 (ours): {per_class or 'n/a'}. Test clips: {test.get('n', 'n/a')}. "
        f"Model file: {size_bytes / 1e6:.2f} MB. Details and commands: `docs/benchmarks.md`, \"Emotion recognition\".",
        "",
        "## Limits",
        "",
        f"- On speakers it never heard it is right about {_pct(accuracy)} of the time (six classes){target_note}:",
        "  treat the caption colour as a hint, and read the probability shown beside it. It does not change",
        "  its mind when the speaker is louder or quieter.",
        "- Acted, studio-recorded English speech from 22 speakers; spontaneous speech is subtler and will",
        "  score lower. Two test actors per sex is a small sample: expect several points of spread.",
        "- English only. Other languages (Korean, German, …) are untested; the prototype failed on them.",
        "- Leave-one-corpus-out figures above are the proxy for unseen rooms and speakers; they are lower",
        "  than the in-corpus figure, and real use will be closer to them.",
        "- No `surprise`, no `calm`; mixed or weak emotions get spread probabilities, which the captions",
        "  show as a probability beside the label.",
        "- Very short (< 0.3 s) or silent input gets no emotion from the runtime (`subtone.service.emotion.recognizer`).",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
