"""`subtone train emotion`: trains our model on the speaker split and writes a run folder."""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from subtone.export.emotion.augment import AugmentConfig, augment, pad_batch
from subtone.export.emotion.cli import RUNS
from subtone.export.emotion.data import LABELS, SPLIT_FILE, Clip, load_clip_audio, load_manifest, split_for
from subtone.export.emotion.metrics import summary
from subtone.export.emotion.model import EmotionCNN, EmotionEnsemble, ModelConfig
from subtone.export.emotion.report import GAINS_DB, evaluate, write_report

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 32
    """Chosen on a dev fold of non-test speakers (docs/benchmarks.md); the one-cycle schedule ends at
    a low rate, so the last epoch is kept."""
    members: int = 3
    """Ensemble members, one per seed (seed, seed + 1, …), sharing one front end."""
    train_on_val: bool = True
    """The split's val speakers train too (the recipe is fixed, nothing is selected on them). False
    keeps them apart and keeps the epoch with the best val macro-F1."""
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1
    ravdess_repeat: int = 2
    """RAVDESS is the target domain and the smaller corpus: each of its clips is seen this often per epoch."""
    tess_per_epoch: int = 800
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def predict_proba(model: EmotionCNN | EmotionEnsemble, waves: Sequence[np.ndarray], gain_db: float = 0.0) -> np.ndarray:
    """One clip at a time at its own length, exactly as the runtime sees it."""
    model.eval()
    g = 10 ** (gain_db / 20)
    prob = model.probabilities if isinstance(model, EmotionEnsemble) else lambda x: torch.softmax(model(x), -1)
    with torch.no_grad():
        out = [prob(torch.from_numpy((w * g).astype(np.float32))[None])[0].numpy() for w in waves]
    return np.stack(out) if out else np.zeros((0, len(LABELS)), np.float32)


def _epoch_indices(clips: Sequence[Clip], cfg: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    rav = [i for i, c in enumerate(clips) if c.dataset != "tess"]
    tess = [i for i, c in enumerate(clips) if c.dataset == "tess"]
    picked = rav * cfg.ravdess_repeat
    if tess:
        picked += list(rng.choice(tess, size=min(cfg.tess_per_epoch, len(tess)), replace=False))
    return rng.permutation(np.array(picked, dtype=int))


def fit(train: Sequence[Clip], val: Sequence[Clip], cfg: TrainConfig, progress: bool = True,
        checkpoint: Path | None = None, label: str = "") -> tuple[EmotionCNN, dict]:
    """One model, AdamW with a one-cycle schedule, seeded by cfg.seed.

    With `val` clips, scores them every epoch and keeps the epoch with the best macro-F1; without,
    keeps the last epoch. With `checkpoint`, the model kept so far is saved there (and the history
    beside it) after every epoch, so an interrupted run still leaves a usable model.
    """
    from tqdm import tqdm

    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    train_waves = load_clip_audio(train, trim=True, progress=progress)
    val_waves = load_clip_audio(val, trim=False, progress=progress) if val else []
    y = torch.tensor([c.target for c in train])
    y_val = np.array([c.target for c in val])
    model = EmotionCNN(cfg.model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = int(np.ceil(len(_epoch_indices(train, cfg, np.random.default_rng(0))) / cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    history = []
    best = (-1.0, None, -1)
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        order = _epoch_indices(train, cfg, rng)
        losses = []
        bar = tqdm(range(0, len(order), cfg.batch_size), desc=f"{label}epoch {epoch + 1}/{cfg.epochs}",
                   disable=not progress, leave=False)
        for start in bar:
            idx = order[start:start + cfg.batch_size]
            batch = torch.from_numpy(pad_batch([augment(train_waves[i], rng, cfg.augment) for i in idx]))
            loss = loss_fn(model(batch), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "elapsed_s": round(time.perf_counter() - t0, 1)}
        line = f"{label}epoch {epoch + 1}: loss {row['loss']:.3f}"
        score = float(epoch)  # without val clips the latest epoch wins
        if val_waves:
            val = summary(y_val, predict_proba(model, val_waves).argmax(1), LABELS)
            row.update(val_acc=val["accuracy"], val_macro_f1=val["macro_f1"])
            line += f", val acc {val['accuracy']:.3f}, val macro-F1 {val['macro_f1']:.3f}"
            score = val["macro_f1"]
        history.append(row)
        line += f" ({row['elapsed_s']:.0f} s)"
        tqdm.write(line) if progress else log.info(line)
        if score >= best[0]:
            best = (score, {k: v.clone() for k, v in model.state_dict().items()}, epoch + 1)
            if checkpoint:
                save_model(EmotionEnsemble([model]), cfg, checkpoint)
        if checkpoint:
            checkpoint.with_name("history.json").write_text(json.dumps({"best_epoch": best[2], "history": history}, indent=2))
    model.load_state_dict(best[1])
    model.eval()
    return model, {"history": history, "best_epoch": best[2], "train_s": round(time.perf_counter() - t0, 1)}


def fit_ensemble(train: Sequence[Clip], val: Sequence[Clip], cfg: TrainConfig, progress: bool = True,
                 checkpoint: Path | None = None) -> tuple[EmotionEnsemble, dict]:
    """cfg.members models from seeds cfg.seed, cfg.seed + 1, …; the checkpoint grows member by member."""
    from dataclasses import replace

    members: list[EmotionCNN] = []
    infos = []
    for k in range(cfg.members):
        label = f"member {k + 1}/{cfg.members} " if cfg.members > 1 else ""
        member_ckpt = checkpoint.with_name(f"member{k + 1}.pt") if checkpoint else None
        model, info = fit(train, val, replace(cfg, seed=cfg.seed + k), progress, member_ckpt, label)
        members.append(model)
        infos.append(info)
        if checkpoint:
            save_model(EmotionEnsemble(members), cfg, checkpoint)
            member_ckpt.unlink(missing_ok=True)
    ensemble = EmotionEnsemble(members).eval()
    return ensemble, {"history": infos[0]["history"], "members": infos,
                      "train_s": round(sum(i["train_s"] for i in infos), 1)}


def save_model(model: EmotionEnsemble, cfg: TrainConfig, path: Path) -> None:
    torch.save({"members": [m.state_dict() for m in model.members], "model": asdict(cfg.model),
                "front": asdict(model.front.cfg)}, path)


def load_trained(path: Path) -> EmotionEnsemble:
    from subtone.export.emotion.frontend import FrontEndConfig
    from subtone.service.errors import SubtoneError

    if not Path(path).is_file():
        raise SubtoneError(f"trained emotion model not found: {path} (expected model.pt from `subtone train emotion`)")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    members = []
    # Checkpoints from before the ensemble hold one model under "state_dict".
    for state in ckpt.get("members") or [ckpt["state_dict"]]:
        member = EmotionCNN(ModelConfig(**ckpt["model"]), FrontEndConfig(**ckpt["front"]))
        member.load_state_dict(state)
        members.append(member)
    return EmotionEnsemble(members).eval()


def _plot_history(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ep = [h["epoch"] for h in history]
    ax.plot(ep, [h["loss"] for h in history], label="train loss")
    if "val_acc" in history[0]:
        ax.plot(ep, [h["val_acc"] for h in history], label="val accuracy")
        ax.plot(ep, [h["val_macro_f1"] for h in history], label="val macro-F1")
    ax.set_xlabel("epoch")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(manifest: Path, run_dir: Path, cfg: TrainConfig, split_path: Path = SPLIT_FILE, loco_epochs: int = 0,
        progress: bool = True) -> dict:
    """Train, score the held-out speakers (with gain sweep), optionally leave-one-corpus-out; write it all."""
    t0 = time.perf_counter()
    clips = load_manifest(manifest)
    split = split_for(clips, split_path)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(
        {"manifest": str(manifest), "split": {"train": split.train, "val": split.val, "test": split.test},
         **asdict(cfg)}, indent=2) + "\n")
    train, val = split.part(clips, "train"), split.part(clips, "val")
    if cfg.train_on_val:
        train, val = train + val, []
    model, info = fit_ensemble(train, val, cfg, progress, checkpoint=run_dir / "model.pt")
    save_model(model, cfg, run_dir / "model.pt")
    _plot_history(info["history"], run_dir / "training.png")
    test = split.part(clips, "test")
    result = evaluate(lambda w, g: predict_proba(model, w, g), test, load_clip_audio(test, trim=False), GAINS_DB)
    write_report(result, run_dir / "test", f"emotion-cnn ({cfg.members} members), held-out speakers")
    out = {"test": {k: result[k] for k in ("n", "accuracy", "macro_f1", "per_class_f1")},
           "gain_stable_share": result["gain_sweep"]["stable_share"], **info}
    log.info("held-out speakers: acc %.3f, macro-F1 %.3f, gain-stable %.3f", result["accuracy"],
             result["macro_f1"], result["gain_sweep"]["stable_share"])
    if loco_epochs:
        out["loco"] = run_loco(clips, split, cfg, loco_epochs, run_dir, progress)
    out["total_s"] = round(time.perf_counter() - t0, 1)
    (run_dir / "metrics.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def run_loco(clips: Sequence[Clip], split, cfg: TrainConfig, epochs: int, run_dir: Path, progress: bool) -> dict:
    """Train one model on one corpus, score the other (validation: the split's val speakers, or every 10th clip)."""
    from dataclasses import replace

    out = {}
    for src, dst in (("ravdess", "tess"), ("tess", "ravdess")):
        src_clips = [c for c in clips if c.dataset == src]
        val = split.part(src_clips, "val") or src_clips[::10]
        held = set(val)
        train = [c for c in src_clips if c not in held]
        small = replace(cfg, epochs=epochs, tess_per_epoch=cfg.tess_per_epoch if src == "tess" else 0,
                        ravdess_repeat=cfg.ravdess_repeat if src == "ravdess" else 0)
        if src == "tess":
            small = replace(small, tess_per_epoch=len(train) // 2)
        model, _ = fit(train, val, small, progress)
        dst_clips = [c for c in clips if c.dataset == dst]
        res = evaluate(lambda w, g: predict_proba(model, w, g), dst_clips, load_clip_audio(dst_clips, trim=False), (0.0,))
        write_report(res, run_dir / f"loco_{src}_to_{dst}", f"emotion-cnn {src} → {dst}")
        out[f"{src}_to_{dst}"] = {k: res[k] for k in ("n", "accuracy", "macro_f1")}
        log.info("LOCO %s→%s: acc %.3f, macro-F1 %.3f", src, dst, res["accuracy"], res["macro_f1"])
    return out


def cli(args: argparse.Namespace) -> int:
    """`subtone train emotion` (options: subtone.export.emotion.cli)."""
    from subtone.service.errors import SubtoneError

    if args.epochs < 1:
        raise SubtoneError(f"--epochs {args.epochs}: expected at least 1")
    if args.members < 1:
        raise SubtoneError(f"--members {args.members}: expected at least 1")
    load_manifest(args.manifest)  # a bad path fails here, in one line, before anything heavy
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if args.baseline:
        from subtone.export.emotion import baseline, train_baseline

        run_dir = args.out or RUNS / f"emotion-baseline-{stamp}"
        res = train_baseline.run(args.manifest, run_dir, baseline.BaselineConfig(budget_s=args.baseline_budget_s),
                                 loco=bool(args.loco_epochs))
        print(f"baseline: acc {res['test']['accuracy']:.3f}, macro-F1 {res['test']['macro_f1']:.3f} → {run_dir}")
        return 0
    if args.loco_only:
        if args.loco_epochs < 1:
            raise SubtoneError("--loco-only needs --loco-epochs N (N ≥ 1)")
        run_dir = args.out or RUNS / f"loco-emotion-{stamp}"
        run_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        clips = load_manifest(args.manifest)
        loco = run_loco(clips, split_for(clips), TrainConfig(), args.loco_epochs, run_dir, progress=True)
        (run_dir / "metrics.json").write_text(json.dumps({"loco": loco, "loco_epochs": args.loco_epochs,
                                                          "total_s": round(time.perf_counter() - t0, 1)}, indent=2) + "\n")
        print(", ".join(f"LOCO {k}: acc {v['accuracy']:.3f}, macro-F1 {v['macro_f1']:.3f}" for k, v in loco.items()))
        return 0
    run_dir = args.out or RUNS / f"emotion-{stamp}"
    res = run(args.manifest, run_dir, TrainConfig(epochs=args.epochs, tess_per_epoch=args.tess_per_epoch, members=args.members),
              loco_epochs=args.loco_epochs)
    print(f"held-out speakers: acc {res['test']['accuracy']:.3f}, macro-F1 {res['test']['macro_f1']:.3f}, "
          f"gain-stable {res['gain_stable_share']:.3f}, {res['train_s']:.0f} s training → {run_dir}")
    return 0
