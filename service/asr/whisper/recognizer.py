"""Whisper on ONNX Runtime: log-mel → encoder → greedy decoding with a KV cache.

Graphs (see subtone.export.whisper_export): the encoder returns every decoder
layer's cross-attention keys/values once per window; the decoder step takes new
tokens plus the grown self-attention cache. Audio over 30 s is cut into 30 s
windows. With `trim_encoder` the encoder sees only the audio's own length plus 5 s
of silence (rounded up to whole seconds) instead of a 30 s window, like whisper.cpp's
audio_ctx: the positional embedding is sliced to match inside the graph.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from subtone.config import Settings
from subtone.service.asr.whisper.decoder_steps import steps_for
from subtone.service.errors import SubtoneError
from subtone.service.models.registry import ModelEntry
from subtone.service.models.onnx_session import SessionInfo, create_session
from subtone.service.asr.recognizer import CancelToken, DecodeCancelled, RecognizerCapabilities, Transcript
from subtone.service.asr.whisper.loop_guard import (
    drop_unspoken_repeat,
    final_token_cap,
    loop_start,
    partial_token_cap,
    strip_repeats,
)
from subtone.service.asr.whisper.frontend import CHUNK_FRAMES, HOP_LENGTH, log_mel
from subtone.service.asr.whisper.level import normalised
from subtone.service.asr.whisper.language import LanguageGuess, LanguageSmoother, LanguageTokens, language_tokens
from subtone.service.asr.whisper.tokenizer import SpecialTokens, WhisperTokenizer

log = logging.getLogger(__name__)

TRIM_TAIL_FRAMES = 500
"""Silence kept after the audio in a trimmed window (5 s). With none, tiny.en loops on clips that
end right at the last word (13 of 38 asr-dev clips repeated a phrase until the token cap). asr-dev
WER, int8 / fp32: 2 s tail 6.2 / 6.4 %, 3 s 5.2 / 6.2 %, 5 s 4.6 / 4.6 %, full 30 s 4.1 / 4.9 %."""
TRIM_MULTIPLE_FRAMES = 100
"""A trimmed window is rounded up to whole seconds: fewer distinct input shapes."""


def trimmed_window_frames(content: int) -> int:
    """Mel frames a trimmed window holds for `content` frames of audio: the audio, TRIM_TAIL_FRAMES
    of silence, rounded up to whole seconds, at most 30 s. What the encoder sees of an utterance."""
    return min(CHUNK_FRAMES, math.ceil((content + TRIM_TAIL_FRAMES) / TRIM_MULTIPLE_FRAMES) * TRIM_MULTIPLE_FRAMES)


@dataclass(frozen=True)
class WhisperOptions:
    max_tokens: int = 224
    """Cap on text tokens per 30 s window."""
    no_speech_threshold: float = 0.6
    """Whisper's rule: drop a window when P(<|nospeech|>) is above this ..."""
    logprob_threshold: float = -1.0
    """... and the mean token log-probability is below this."""
    trim_encoder: bool = True
    """Encode only the audio's length (+5 s, rounded up to 1 s) instead of a full 30 s window."""
    max_partial_tokens_per_s: float = 6.0
    """Token cap of a partial caption's decode per second of audio (plus a few)."""
    silence_gate_dbfs: float = -60.0
    """RMS level under which audio is silence and no model runs."""
    language: str = "auto"
    """"auto" or a language code (multilingual models; an English-only model hears "en")."""
    task: str = "transcribe"
    """"transcribe" or "translate" (to English)."""
    normalize_level: bool = False
    """Scale each decode's audio to one loudness first (subtone.service.asr.whisper.level)."""
    stop_on_repeat: bool = True
    """End a window's decoding when the text repeats a phrase back to back, and drop the repeat
    (subtone.service.asr.whisper.loop_guard): tiny.en with a trimmed window loops on many clips otherwise."""

    @classmethod
    def from_settings(cls, settings: Settings) -> "WhisperOptions":
        whisper = settings.asr.whisper
        return cls(
            max_tokens=whisper.max_tokens,
            no_speech_threshold=whisper.no_speech_threshold,
            logprob_threshold=whisper.logprob_threshold,
            trim_encoder=whisper.trim_encoder,
            max_partial_tokens_per_s=whisper.max_partial_tokens_per_s,
            normalize_level=whisper.normalize_level,
            silence_gate_dbfs=settings.asr.silence_gate_dbfs,
            language=settings.asr.language,
            task=settings.asr.task,
        )


@dataclass(frozen=True)
class WindowResult:
    tokens: tuple[int, ...]
    avg_logprob: float
    no_speech_prob: float


def rms_dbfs(audio: np.ndarray) -> float:
    if audio.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max()
    return shifted - np.log(np.exp(shifted).sum())


class WhisperRecognizer:
    """Transcribes 16 kHz mono float32 audio; sessions and masks are built once and reused."""

    capabilities = RecognizerCapabilities(cancellable=True)

    def __init__(
        self,
        name: str,
        encoder: ort.InferenceSession,
        decoder: ort.InferenceSession,
        tokenizer: WhisperTokenizer,
        prompt: tuple[int, ...],
        suppress: np.ndarray,
        suppress_begin: np.ndarray,
        dims: dict,
        options: WhisperOptions,
        session_info: SessionInfo,
        languages: LanguageTokens | None = None,
        model_language: str = "en",
    ):
        self.name = name
        self.session_info = session_info
        self.options = options
        self.tokenizer = tokenizer
        self._encoder = encoder
        self._decoder = decoder
        self._special = tokenizer.special
        self._prompt = np.array([prompt], dtype=np.int64)
        self._suppress = suppress
        self._suppress_begin = suppress_begin
        self._n_text_ctx = int(dims["n_text_ctx"])
        layers, heads = int(dims["n_text_layer"]), int(dims["n_head"])
        head_dim = int(dims["n_state"]) // heads
        self._self_names = [f"self_{kv}_{i}" for kv in "kv" for i in range(layers)]
        self._cross_names = [f"cross_{kv}_{i}" for kv in "kv" for i in range(layers)]
        empty = np.zeros((1, heads, 0, head_dim), dtype=np.float32)
        self._empty_cache = {name: empty for name in self._self_names}
        self._token = np.zeros((1, 1), dtype=np.int64)
        self._languages = languages or LanguageTokens({}, self._special.sot, self._special.no_timestamps, {})
        self._model_language = model_language
        self.language_smoother = LanguageSmoother()
        """The conversation's language so far (auto-detect with a multilingual model)."""
        # On CUDA the KV cache stays on the GPU between steps (I/O binding); plain numpy on the CPU.
        self._steps = steps_for(session_info.provider, encoder, decoder, self._cross_names, self._self_names)

    @property
    def io_binding(self) -> bool:
        return self._steps.bound

    @io_binding.setter
    def io_binding(self, on: bool) -> None:
        """Force the I/O-bound (True) or plain (False) decoder steps, e.g. to test the bound path on the CPU."""
        kept = self._steps.state_names
        self._steps = steps_for(
            self.session_info.provider, self._encoder, self._decoder, self._cross_names, self._self_names, io_binding=on
        )
        self._steps.state_names = kept

    @property
    def encoder_outputs(self) -> tuple[str, ...]:
        return tuple(o.name for o in self._encoder.get_outputs())

    def keep_encoder_states(self, names: tuple[str, ...]) -> None:
        """Return these encoder outputs (e.g. "states_layer4") with every transcript, so an emotion
        head reads the states this decode computed anyway: one encoder pass per utterance."""
        missing = [n for n in names if n not in self.encoder_outputs]
        if missing:
            raise SubtoneError(
                f"model '{self.name}' has no encoder output {', '.join(missing)}; re-export it with "
                f"`subtone export whisper` (exports since issue 12 carry every block's states)"
            )
        self._steps.state_names = list(names)

    @classmethod
    def from_entry(cls, entry: ModelEntry, settings: Settings) -> "WhisperRecognizer":
        info = entry.info
        try:
            special = SpecialTokens.from_mapping(info["special_tokens"])
            dims = dict(info["dims"])
            prompt = tuple(int(t) for t in info["prompt"])
        except (KeyError, TypeError):
            raise SubtoneError(
                f"manifest entry '{entry.name}' lacks Whisper fields (special_tokens, dims, prompt); "
                f"re-export it with `{entry.export_command or 'subtone export whisper'}`"
            ) from None
        providers, threads = settings.runtime.providers, settings.runtime.threads
        encoder, session_info = create_session(entry.path("encoder"), providers, threads, f"{entry.name} encoder")
        decoder, _ = create_session(entry.path("decoder"), providers, threads, f"{entry.name} decoder")
        tokenizer = WhisperTokenizer(entry.path("tokenizer"), special)
        n_vocab = int(dims["n_vocab"])
        suppress = np.zeros(n_vocab, dtype=bool)
        suppress[[t for t in info.get("suppress_tokens", []) if 0 <= t < n_vocab]] = True
        suppress[special.sot :] = True  # control and timestamp tokens are never text
        suppress_begin = suppress.copy()
        suppress_begin[[t for t in info.get("suppress_tokens_begin", []) if 0 <= t < n_vocab]] = True
        options = WhisperOptions.from_settings(settings)
        codes = tuple(str(c) for c in info.get("languages", ()))
        languages = language_tokens(info["special_tokens"], tokenizer.token_id, codes)
        languages.check(entry.name, options.language, options.task, codes)
        log.debug("%s ready: %s", entry.name, options)
        return cls(
            entry.name,
            encoder,
            decoder,
            tokenizer,
            prompt,
            suppress,
            suppress_begin,
            dims,
            options,
            session_info,
            languages,
            codes[0] if len(codes) == 1 else "",
        )

    def transcribe(self, audio: np.ndarray, *, partial: bool = False, cancel: CancelToken | None = None) -> Transcript:
        """Text for `audio` with the loop guards applied (see SpeechRecognizer and loop_guard).

        A final's tokens are capped at FINAL_TOKENS_PER_S of audio; a partial's (audio cut off
        mid-word loops more) at `max_partial_tokens_per_s`, and its text always loses a trailing loop.
        """
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if partial:
            cap = partial_token_cap(audio.size, self.options.max_partial_tokens_per_s)
        else:
            cap = final_token_cap(audio.size)
        try:
            result = self.decode(audio, cap, cancel.run_options() if cancel is not None else None, commit=not partial)
        except Exception:
            if cancel is not None and cancel.cancelled:  # ONNX Runtime's error for a terminated run
                raise DecodeCancelled(self.name) from None
            raise
        if cancel is not None and cancel.cancelled:
            raise DecodeCancelled(self.name)
        text = result.text.strip()
        if partial:
            text = strip_repeats(text)
        elif len(result.tokens) >= cap - 1:  # ran into the cap: most likely a loop the token guard missed
            text = strip_repeats(text, min_repeats=2)
            log.warning("%s: decode hit its %d-token cap; loop cut", self.name, cap)
        else:
            text = drop_unspoken_repeat(text, audio, result.language)
        return dataclasses.replace(result, text=text)

    def decode(self, audio: np.ndarray, max_tokens: int | None = None, run_options=None, commit: bool = True) -> Transcript:
        """Text for `audio`; empty for silence (energy gate) or when Whisper's no-speech rule fires.

        `max_tokens` lowers the per-window token cap. `run_options` (onnxruntime.RunOptions) lets
        another thread abort the decode by setting its `terminate`. The language is chosen on the
        first window; `commit` lets this decode move the conversation's language (finals do,
        partials do not).
        """
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if rms_dbfs(audio) < self.options.silence_gate_dbfs:
            return Transcript(text="", tokens=(), avg_logprob=0.0, no_speech_prob=1.0)
        mel = log_mel(normalised(audio) if self.options.normalize_level else audio)
        content = audio.size // HOP_LENGTH
        windows: list[_Window] = []
        for start in range(0, max(content, 1), CHUNK_FRAMES):  # the language is chosen on the first window
            guess = windows[0].guess if windows else None
            windows.append(self._decode_window(mel, start, min(CHUNK_FRAMES, content - start), max_tokens,
                                               run_options, guess, commit))
        return self._transcript(windows)

    def _transcript(self, windows: list["_Window"]) -> Transcript:
        """The windows' text joined; silent windows (Whisper's no-speech rule) add no words."""
        spoken = [w for w in windows if not self._is_silence(w.result)]
        tokens = [t for w in spoken for t in w.result.tokens]
        guess = windows[0].guess
        text = self.tokenizer.decode(tokens)
        return Transcript(
            text=text,
            tokens=tuple(tokens),
            avg_logprob=float(np.mean([w.result.avg_logprob for w in spoken])) if spoken else 0.0,
            no_speech_prob=float(min(w.result.no_speech_prob for w in windows)),
            language=guess.code if text else "",
            language_prob=guess.prob if text else 0.0,
            encoder_states={name: np.concatenate([w.states[name] for w in windows]) for name in self._steps.state_names},
        )

    def _decode_window(self, mel: np.ndarray, start: int, content: int, max_tokens: int | None, run_options,
                       guess: LanguageGuess | None, commit: bool) -> "_Window":
        """Encode and greedily decode one ≤ 30 s window (in language `guess`, or the one detected
        here); keeps the asked-for encoder states of its audio frames, not of the padding."""
        self._steps.encode(_even(self._window(mel, start, content)), run_options)
        states = {name: value[0, : content // 2] for name, value in self._steps.states.items()}
        guess = guess or self._language(run_options, commit)
        return _Window(self._greedy(self._prompt_for(guess), max_tokens, run_options), guess, states)

    def _language(self, run_options, commit: bool) -> LanguageGuess:
        """The language of the encoded window: fixed, the model's only one, or detected."""
        if not self._languages.multilingual:
            return LanguageGuess(self._model_language or "en", 1.0)
        if self.options.language != "auto":
            return LanguageGuess(self.options.language, 1.0)
        sot = np.array([[self._special.sot]], dtype=np.int64)
        logits = self._steps.first(sot, self._empty_cache, run_options)
        return self.language_smoother.choose(self._languages.probabilities(logits[0, -1]), commit)

    def _prompt_for(self, guess: LanguageGuess) -> np.ndarray:
        if not self._languages.multilingual:
            return self._prompt
        return np.array([self._languages.prompt(guess.code, self.options.task)], dtype=np.int64)

    def _window(self, mel: np.ndarray, start: int, content: int) -> np.ndarray:
        frames = trimmed_window_frames(content) if self.options.trim_encoder else CHUNK_FRAMES
        return np.ascontiguousarray(mel[None, :, start : start + frames])

    def _is_silence(self, result: WindowResult) -> bool:
        if not result.tokens:
            return True
        return (
            result.no_speech_prob > self.options.no_speech_threshold
            and result.avg_logprob < self.options.logprob_threshold
        )

    def decode_mel(self, mel: np.ndarray, max_tokens: int | None = None, run_options=None) -> WindowResult:
        """Greedy decoding of one window's log-mel [1, 80, F] (F ≤ 3000) with the model's default prompt."""
        self._steps.encode(_even(mel), run_options)
        return self._greedy(self._prompt, max_tokens, run_options)

    def _greedy(self, prompt: np.ndarray, max_tokens: int | None, run_options) -> WindowResult:
        """Greedy decoding over the window `encode` saw last, after `prompt` [1, P]."""
        steps = self._steps
        logits = steps.first(prompt, self._empty_cache, run_options)
        no_speech_prob = float(np.exp(_log_softmax(logits[0, 0])[self._special.no_speech]))
        step_logits = logits[0, -1]
        limit = min(max_tokens or self.options.max_tokens, self.options.max_tokens, self._n_text_ctx - prompt.shape[1])
        tokens: list[int] = []
        sum_logprob = 0.0
        for step in range(limit + 1):
            step_logits[self._suppress_begin if step == 0 else self._suppress] = -np.inf
            logprobs = _log_softmax(step_logits)
            token = int(np.argmax(step_logits))
            sum_logprob += float(logprobs[token])
            if token == self._special.eot or step == limit:
                break
            tokens.append(token)
            if self.options.stop_on_repeat and (repeat := loop_start(tokens)) is not None:
                del tokens[repeat:]
                break
            self._token[0, 0] = token
            logits = steps.next(self._token, run_options)
            step_logits = logits[0, -1]
        return WindowResult(
            tokens=tuple(tokens),
            avg_logprob=sum_logprob / (len(tokens) + 1),
            no_speech_prob=no_speech_prob,
        )


@dataclass(frozen=True)
class _Window:
    result: WindowResult
    guess: LanguageGuess
    states: dict[str, np.ndarray]


def _even(mel: np.ndarray) -> np.ndarray:
    """A trimmed window must hold an even number of frames for the stride-2 convolution."""
    if mel.shape[-1] < CHUNK_FRAMES:
        return mel[..., : mel.shape[-1] - mel.shape[-1] % 2]
    return mel
