"""MODEL_CARD.md for the emotion head on Whisper base's encoder: data, licences, metrics, limits."""

from __future__ import annotations

from subtone.service.events import EMOTIONS


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def write_head_card(path, name: str, metrics: dict) -> None:
    plain, adapted = metrics["plain"], metrics["adapted"]
    lines = [
        f"# {name}: speech emotion on Whisper base's encoder (NON-COMMERCIAL, RESEARCH ONLY)",
        "",
        "Six classes, in this output order: " + ", ".join(f"`{e}`" for e in EMOTIONS) + ".",
        "",
        "A small head (Linear → GELU → Linear, two ensemble members) on the hidden states of "
        + _blocks(metrics["layers"]) + " of Whisper base's encoder (int8, frozen), pooled",
        "over the utterance's voiced frames (mean and spread; a frame is voiced within 35 dB of the",
        "utterance's loudest, so the same frames are chosen at any volume). When the speech model is",
        "Whisper base the head reads the states the recognizer computed anyway (one encoder pass per",
        "utterance); otherwise subtone runs the encoder for it. Features are standardised by the audio",
        "source's own running statistics (adaptation to the voice, causal: an utterance is judged with",
        "what came before it), shrunk to the training statistics (`prior.npz`) until the session has",
        "said enough. Probabilities are calibrated (temperature "
        f"{metrics['temperature']:.2f}, fitted on the validation actors); a second output scores intensity",
        "(P(strongly expressed), from RAVDESS's normal/strong labels).",
        "",
        "## Licence: non-commercial, research only",
        "",
        "subtone's code is MIT, but **this model is trained on data licensed for non-commercial or",
        "research use only, and carries those terms**: RAVDESS (Livingstone & Russo 2018, Zenodo",
        "1188976) is CC BY-NC-SA 4.0; TESS (Dupuis & Pichora-Fuller, University of Toronto, 2010,",
        "doi:10.5683/SP2/E8H2MF) is CC BY-NC-ND 4.0; the Korean emotiontts clips are for research use",
        "only (see ../shared/data/emotion/SOURCES.md). Whisper's weights are MIT (OpenAI). Do not use",
        "this model in a commercial product.",
        "",
        "## Data",
        "",
        f"Trained on {metrics['train_clips']} clips: " + ", ".join(metrics["train_corpora"])
        + " (RAVDESS train actors of export/emotion/speaker_split.json, all of TESS, the 7 Korean",
        "speakers). Each corpus weighs the same; every clip is held to all six classes (Korean has no",
        "fear or disgust). The encoder hears every utterance at one loudness (its loud frames scaled",
        "to −15 dBFS, as the recognizer does with `[asr.whisper] normalize_level`), so the volume is",
        "not a cue" + (", and half the clips of each epoch were heard at a random level (−25 to +10 dB)."
                       if metrics.get("gain_augment") else "."),
        "RAVDESS 'calm' is 'neutral'; 'surprise' is left out (no caption color for it).",
        "",
        "## Measured (held-out RAVDESS actors, never trained on; `subtone train emotion --encoder whisper-base`)",
        "",
        "| | alone | with session adaptation |",
        "|---|---|---|",
        f"| accuracy, 6 classes | {_pct(plain['heldout']['accuracy'])} | {_pct(adapted['heldout']['accuracy'])} |",
        f"| right where a color is shown | {_pct(plain['heldout']['accuracy_shown'])} "
        f"({_pct(plain['heldout']['coverage'])} shown) | {_pct(adapted['heldout']['accuracy_shown'])} "
        f"({_pct(adapted['heldout']['coverage'])} shown) |",
        f"| intensity, normal vs strong | {_pct(plain['heldout'].get('intensity_accuracy'))} "
        f"| {_pct(adapted['heldout'].get('intensity_accuracy'))} |",
        f"| LJSpeech narration shown neutral or uncertain | {_pct(plain['narration']['neutral_or_uncertain'])} "
        f"| {_pct(adapted['narration']['neutral_or_uncertain'])} |",
        "",
        f"The abstention threshold in the manifest ({metrics['threshold']:.2f}) is the median calibrated",
        "confidence on the validation actors; `[emotion] min_confidence` overrides it. Cross-corpus,",
        "Korean leave-one-speaker-out and gain-sweep results: docs/benchmarks.md.",
        "",
        "## Limits",
        "",
        "- Acted emotion (actors reading fixed sentences) is not everyday speech: expect lower accuracy",
        "  on conversation, which is why the caption says 'uncertain' rather than guess.",
        "- Korean is covered by 7 speakers and four classes only; other languages by none.",
        "- Speech quieter than about −60 dBFS is boosted at most 45 dB, so it is judged quieter than it is.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def _blocks(layers: list[int]) -> str:
    """[4, 6] → 'blocks 4 and 6'; [1, …, 6] → 'blocks 1 to 6' (all of them)."""
    if len(layers) > 2 and list(layers) == list(range(layers[0], layers[-1] + 1)):
        return f"blocks {layers[0]} to {layers[-1]}"
    return "blocks " + " and ".join(str(k) for k in layers)
