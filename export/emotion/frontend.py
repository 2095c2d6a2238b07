"""Log-mel front end that lives inside the model (and so inside the ONNX graph).

Level-robust by construction: the log-mel image is normalised by its own mean and spread over the
frames that carry sound, so scaling the waveform by any gain g (which adds 2·ln g to every log-mel
value) leaves the normalised features unchanged (the log floor is relative to the utterance's peak). Frames quieter than the
loudest frame minus `floor_db` (silence, padding) are masked out of the statistics and pooling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class FrontEndConfig:
    sample_rate: int = 16_000
    win: int = 400
    """25 ms Hann window, also the DFT size (201 bins)."""
    hop: int = 160
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 8_000.0
    floor_db: float = 40.0


def mel_filterbank(cfg: FrontEndConfig) -> np.ndarray:
    """[bins, n_mels] triangular filters on the HTK mel scale, each normalised to unit area."""
    def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    bins = cfg.win // 2 + 1
    freqs = np.linspace(0, cfg.sample_rate / 2, bins)
    edges = mel_to_hz(np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(cfg.fmax), cfg.n_mels + 2))
    fb = np.zeros((bins, cfg.n_mels))
    for m in range(cfg.n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (freqs - lo) / max(mid - lo, 1e-6)
        down = (hi - freqs) / max(hi - mid, 1e-6)
        fb[:, m] = np.clip(np.minimum(up, down), 0, None)
        fb[:, m] /= max(fb[:, m].sum(), 1e-6)
    return fb.astype(np.float32)


class LogMelFrontEnd(nn.Module):
    """[B, samples] 16 kHz waveform → (normalised log-mel [B, n_mels, frames], frame mask [B, frames])."""

    def __init__(self, cfg: FrontEndConfig = FrontEndConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        n = cfg.win
        k = np.arange(n)[:, None]
        f = np.arange(n // 2 + 1)[None, :]
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic Hann, as torch.hann_window
        basis = np.concatenate([np.cos(2 * np.pi * k * f / n), -np.sin(2 * np.pi * k * f / n)], axis=1)
        # The DFT as a strided convolution: exports to plain ONNX Conv, faster in ORT than its STFT op.
        self.register_buffer("dft", torch.tensor((basis * window[:, None]).T[:, None, :], dtype=torch.float32))
        self.register_buffer("window", torch.tensor(window, dtype=torch.float32))
        self.register_buffer("mel", torch.tensor(mel_filterbank(cfg)))
        self.use_fft = True
        """torch.stft while training (cheap); the convolution for export. Same numbers (tested)."""

    def power_spectrum(self, wave: torch.Tensor) -> torch.Tensor:
        """[B, frames, bins]; the waveform is zero-padded by half a window each side."""
        half = self.cfg.win // 2
        wave = F.pad(wave, (half, half))
        if self.use_fft and not torch.onnx.is_in_onnx_export():
            spec = torch.stft(wave, self.cfg.win, self.cfg.hop, window=self.window, center=False, return_complex=True)
            return spec.abs().square().transpose(1, 2)
        bins = self.cfg.win // 2 + 1
        y = F.conv1d(wave[:, None, :], self.dft, stride=self.cfg.hop)
        return (y[:, :bins].square() + y[:, bins:].square()).transpose(1, 2)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mel = self.power_spectrum(wave) @ self.mel  # [B, T, M]
        # The log floor follows the utterance's own peak, so it scales with the gain like the signal
        # does (an absolute floor would not: bands the resampler emptied sit at the floor).
        peak = mel.amax(dim=(1, 2), keepdim=True)
        logmel = torch.log(mel + peak * 1e-8 + 1e-30)
        energy = torch.log(mel.sum(dim=2) + peak[:, :, 0] * 1e-8 + 1e-30)  # [B, T]
        floor = self.cfg.floor_db * math.log(10) / 10
        mask = (energy > energy.amax(dim=1, keepdim=True) - floor).to(logmel.dtype)
        weight = mask[:, :, None]
        count = weight.sum(dim=(1, 2), keepdim=True) * logmel.shape[2]
        mean = (logmel * weight).sum(dim=(1, 2), keepdim=True) / count
        var = ((logmel - mean).square() * weight).sum(dim=(1, 2), keepdim=True) / count
        feats = (logmel - mean) / torch.sqrt(var + 1e-5) * weight
        return feats.transpose(1, 2), mask
