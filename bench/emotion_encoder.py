"""Emotion on Whisper base's encoder (issue 12, the measurement before the product).

Reads whisper-base-int8's encoder (exported with every block's hidden states; `subtone export
whisper --model base`), pools each clip's states over its voiced frames, trains heads with the
product's recipe (subtone.export.emotion.head_train, torch: the `train` extra) and scores them the
ways issue 12 asks, side by side with and without session adaptation, applied causally: each
clip is judged with the statistics of its speaker's earlier clips only, in a shuffled order.

    python bench/emotion_encoder.py --out runs/bench-emotion-encoder/product
    # ≈ 5 min of features per level (cached in runs/encoder-features), then ≈ 10 min of heads

Evaluations: held-out RAVDESS test actors (export/emotion/speaker_split.json), leave-one-corpus-out
both ways, leave-one-Korean-speaker-out (4 classes), LJSpeech narration (share neutral or abstained),
a gain sweep (−20/−10/0/+10 dB), accuracy against coverage after temperature scaling on the
validation actors, and intensity (normal/strong) on the held-out actors.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
GAINS_DB = (-20.0, -10.0, 10.0)


# -- the report ---------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, nargs="+", help="encoder blocks pooled (1-6), concatenated; "
                    "default: the product's (subtone.export.emotion.head_recipe.LAYERS)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=ROOT / "runs" / "encoder-features")
    ap.add_argument("--gain-augment", action="store_true", help="train on every clip also at a random level (−25…+10 dB)")
    ap.add_argument("--mask-missing", action="store_true", help="mask a corpus's missing classes out of its loss")
    ap.add_argument("--out", type=Path, help="also write results.json here")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from subtone.config.settings import project_models_dir
    from subtone.export.emotion.encoder_data import Corpus, corpus_rows, extract, select_blocks
    from subtone.export.emotion.head_recipe import FEATURES, GAIN_RANGE_DB, LAYERS, encoder_path
    from subtone.export.emotion.head_train import HeadConfig
    from subtone.service.models.registry import sha256_file

    args.layers = args.layers or list(LAYERS)
    encoder = encoder_path(project_models_dir())
    tag = f"{sha256_file(encoder)[:12]}-{FEATURES}"
    rows = corpus_rows(SHARED)
    feats = lambda gain, name, rs=rows: select_blocks(  # noqa: E731
        extract(encoder, rs, gain, args.cache / f"feats-{tag}{name}.npy", args.threads), args.layers)
    c = Corpus(rows, feats(0.0, "+0"))
    other = feats(np.random.default_rng(0).uniform(*GAIN_RANGE_DB, len(rows)), "-random-gain") if args.gain_augment else None
    cfg = HeadConfig(epochs=args.epochs, seeds=args.seeds, mask_missing=args.mask_missing)
    bench = Bench(c, other, cfg)
    t0 = time.perf_counter()
    results = bench.heldout(lambda g: feats(g, f"{g:+.0f}-test", [rows[i] for i in bench.test]))
    results.update(bench.cross_corpus())
    results.update(bench.korean())
    results.update(cost_ms=cost(),
                   seconds=time.perf_counter() - t0, layers=args.layers, gain_augment=args.gain_augment,
                   mask_missing=args.mask_missing)
    print(json.dumps(results, indent=1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


class Bench:
    """Heads trained with the product's recipe on different clip sets, scored plain and adapted."""

    def __init__(self, c, other, cfg) -> None:
        from subtone.export.emotion.data import SPLIT_FILE

        self.c, self.other, self.cfg = c, other, cfg
        split = json.loads(SPLIT_FILE.read_text())
        self.split = split
        self.labelled = c.y >= 0
        self.test = np.flatnonzero(np.isin(c.speaker, split["test"]))
        self.val = np.flatnonzero(np.isin(c.speaker, split["val"]))

    def fit(self, train: np.ndarray):
        from subtone.export.emotion.head_train import prior_of, stack_members, train_member

        c = self.c
        prior = prior_of(c.x[train])
        members = [train_member(c.x, c.y, c.strong, c.speaker, c.dataset, train, prior, seed, self.cfg, self.other)
                   for seed in range(self.cfg.seeds)]
        return stack_members(members), prior

    def logits(self, model, x: np.ndarray, rows: np.ndarray, adapt: bool):
        from subtone.export.emotion.head_train import session_standardised

        head, prior = model
        probs, strong = head.forward(session_standardised(x, rows, self.c.speaker, prior, adapt))
        return np.log(probs + 1e-12), strong

    def heldout(self, gain_features) -> dict:
        from subtone.export.emotion.encoder_data import NARRATION
        from subtone.export.emotion.head_train import fit_temperature, softmax

        c, test, val, results = self.c, self.test, self.val, {}
        model = self.fit(np.flatnonzero(self.labelled & ~np.isin(c.speaker, self.split["test"] + self.split["val"])))
        for adapt in (False, True):
            key = "adapted" if adapt else "plain"
            lg, st = self.logits(model, c.x, test, adapt)
            vl, _ = self.logits(model, c.x, val, adapt)
            temp = fit_temperature(vl, c.y[val])
            threshold = float(np.median(softmax(vl, temp).max(1)))  # half the validation actors get a color
            p = softmax(lg, temp)
            conf, right = p.max(1), p.argmax(1) == c.y[test]
            order = np.argsort(-conf)
            curve = [(k / test.size, float(right[order[:k]].mean())) for k in range(1, test.size + 1)]
            has = c.strong[test] >= 0
            results[f"ravdess_heldout_{key}"] = dict(
                accuracy=float(right.mean()), temperature=temp,
                accuracy_at_50pct_coverage=max(a for cov, a in curve if 0.5 - 1e-9 <= cov <= 0.5 + 1.0 / test.size),
                threshold=threshold, coverage_at_threshold=float((conf >= threshold).mean()),
                accuracy_shown_at_threshold=float(right[conf >= threshold].mean()),
                intensity_accuracy=float(((st[has] > 0.5) == c.strong[test][has]).mean()),
                coverage_curve=[(round(cv, 3), round(a, 3)) for cv, a in curve[9::10]])
            if not adapt:  # the same clips louder and quieter, judged alone
                same = np.ones(test.size, bool)
                for g in GAINS_DB:
                    gx = np.zeros_like(c.x)
                    gx[test] = gain_features(g)
                    same &= self.logits(model, gx, test, False)[0].argmax(1) == lg.argmax(1)
                results["gain_sweep_same_class"] = float(same.mean())
            lj = np.flatnonzero(c.dataset == NARRATION)
            lp = softmax(self.logits(model, c.x, lj, adapt)[0], temp)
            results[f"ljspeech_{key}"] = dict(neutral=float((lp.argmax(1) == 0).mean()),
                                              neutral_or_abstained=float(((lp.argmax(1) == 0) | (lp.max(1) < threshold)).mean()))
            print(key, json.dumps(results[f"ravdess_heldout_{key}"])[:300], flush=True)
        return results

    def cross_corpus(self) -> dict:
        c, results = self.c, {}
        for src, dst in (("ravdess", "tess"), ("tess", "ravdess")):
            model = self.fit(np.flatnonzero(self.labelled & (c.dataset == src)))
            rows = np.flatnonzero(self.labelled & (c.dataset == dst))
            for adapt in (False, True):
                right = self.logits(model, c.x, rows, adapt)[0].argmax(1) == c.y[rows]
                results[f"loco_{src}_to_{dst}_{'adapted' if adapt else 'plain'}"] = float(right.mean())
        return results

    def korean(self) -> dict:
        """Leave one Korean speaker out (the other six train, with RAVDESS and TESS)."""
        from subtone.export.emotion.encoder_data import KOREAN

        c = self.c
        hits: dict[bool, list] = {False: [], True: []}
        hits4: dict[bool, list] = {False: [], True: []}
        for spk in sorted(set(c.speaker[c.dataset == KOREAN])):
            model = self.fit(np.flatnonzero(self.labelled & (c.speaker != spk) & ~np.isin(c.speaker, self.split["test"])))
            rows = np.flatnonzero(c.speaker == spk)
            for adapt in (False, True):
                lg = self.logits(model, c.x, rows, adapt)[0]
                hits[adapt].append(lg.argmax(1) == c.y[rows])
                hits4[adapt].append(lg[:, :4].argmax(1) == c.y[rows])
        return {f"korean_loso{way}_{'adapted' if adapt else 'plain'}": float(np.concatenate(h[adapt]).mean())
                for way, h in (("", hits), ("_4way", hits4)) for adapt in (False, True)}


def cost() -> dict[str, float]:
    """Median ms per 3 s clip on one thread through the product's HeadEmotionRecognizer: reading
    states the recognizer computed (shared), and running its own encoder (standalone)."""
    from subtone.config import load_settings
    from subtone.config.settings import project_models_dir
    from subtone.service.audio.file import load_audio
    from subtone.service.emotion.encoder_features import run_encoder
    from subtone.service.emotion.head_recognizer import HeadEmotionRecognizer
    from subtone.service.models.registry import load_model

    models = project_models_dir()
    settings = load_settings(overrides={"models.dir": str(models), "runtime.providers": ["cpu"], "runtime.threads": 1})
    head = HeadEmotionRecognizer.from_entry(load_model(models, "emotion-whisper-base"), settings)
    audio = load_audio(SHARED / "emotion" / "ravdess" / "Actor_01" / "03-01-01-01-01-01-01.flac")[:48_000]
    states = run_encoder(head._encoder, head.state_names, audio)

    def median_ms(fn, n: int = 15) -> float:
        fn()
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return float(np.median(times) * 1000)

    return dict(shared=median_ms(lambda: head.classify(audio, encoder_states=states, final=False)),
                standalone=median_ms(lambda: head.classify(audio, final=False)))


if __name__ == "__main__":
    raise SystemExit(main())
