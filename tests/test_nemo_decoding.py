"""The NeMo greedy searches and detokenisers on hand-made logits (no NeMo, no torch needed)."""

from __future__ import annotations

import numpy as np
import pytest

from subtone.service.errors import SubtoneError
from subtone.service.asr.nemo.decoding import PredictorState, greedy_ctc, greedy_rnnt, greedy_tdt
from subtone.service.asr.nemo.recognizer import encoded_length
from subtone.service.asr.nemo.tokenizer import CharDetokenizer, SentencePieceDetokenizer, load_detokenizer

BLANK = 4  # vocabulary 0..3, blank last as in NeMo


def one_hot_frames(labels: list[int], n_classes: int = BLANK + 1) -> np.ndarray:
    logits = np.full((len(labels), n_classes), -10.0, dtype=np.float32)
    logits[np.arange(len(labels)), labels] = 0.0
    return logits


def test_ctc_merges_repeats_and_drops_blanks() -> None:
    frames = one_hot_frames([1, 1, BLANK, 1, 2, 2, BLANK, BLANK, 3, 0])
    assert greedy_ctc(frames, 10, BLANK) == [1, 1, 2, 3, 0]


def test_ctc_ignores_frames_past_the_length() -> None:
    frames = one_hot_frames([1, 2, 3, 3])
    assert greedy_ctc(frames, 2, BLANK) == [1, 2]


class ScriptedJoint:
    """A joint whose choice depends on (frame index, tokens emitted so far), recording each call."""

    def __init__(self, script: dict[tuple[int, int], int], durations: dict[tuple[int, int], int] | None = None):
        self.script = script
        self.durations = durations or {}
        self.calls: list[tuple[int, int]] = []

    def __call__(self, frame: np.ndarray, state: PredictorState):
        t, emitted = int(frame[0]), int(state.states[0][0])
        self.calls.append((t, emitted))
        token = self.script.get((t, emitted), BLANK)
        logits = np.full(BLANK + 1 + 5, -10.0, dtype=np.float32)
        logits[token] = 0.0
        logits[BLANK + 1 + self.durations.get((t, emitted), 1)] = 0.0
        # the state counts emitted tokens; it must only move when a token is emitted
        return logits, (np.array([emitted + 1.0]),)


def frames_of(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float32)[:, None]


START = PredictorState(BLANK, (np.array([0.0]),))


def test_rnnt_emits_until_blank_and_updates_state_only_on_tokens() -> None:
    joint = ScriptedJoint({(0, 0): 1, (0, 1): 2, (2, 2): 3})
    tokens = greedy_rnnt(frames_of(4), 4, joint, START, BLANK, max_symbols=10)
    assert tokens == [1, 2, 3]
    # frame 1 saw the state after two tokens, frame 3 the state after three
    assert joint.calls == [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 3), (3, 3)]


def test_rnnt_moves_on_after_max_symbols() -> None:
    joint = ScriptedJoint({(0, k): 1 for k in range(10)})
    assert greedy_rnnt(frames_of(2), 2, joint, START, BLANK, max_symbols=3) == [1, 1, 1]


def test_tdt_jumps_by_the_predicted_duration() -> None:
    # durations index == value here: (0,1,2,3,4)
    joint = ScriptedJoint({(0, 0): 1, (3, 1): 2}, durations={(0, 0): 3, (3, 1): 2})
    tokens = greedy_tdt(frames_of(8), 8, joint, START, BLANK, (0, 1, 2, 3, 4), max_symbols=10)
    assert tokens == [1, 2]
    assert [t for t, _ in joint.calls] == [0, 3, 5, 6, 7]


def test_tdt_blank_with_duration_zero_still_advances() -> None:
    joint = ScriptedJoint({}, durations={(0, 0): 0, (1, 0): 0})
    assert greedy_tdt(frames_of(3), 3, joint, START, BLANK, (0, 1, 2, 3, 4), max_symbols=10) == []
    assert [t for t, _ in joint.calls] == [0, 1, 2]


def test_tdt_caps_tokens_on_one_frame() -> None:
    joint = ScriptedJoint({(0, k): 1 for k in range(10)}, durations={(0, k): 0 for k in range(10)})
    tokens = greedy_tdt(frames_of(2), 2, joint, START, BLANK, (0, 1, 2, 3, 4), max_symbols=4)
    assert tokens == [1, 1, 1, 1]


def test_encoded_length_follows_nemo_striding_arithmetic() -> None:
    dw_striding_x8 = {"all_paddings": 2, "kernel_size": 3, "stride": 2, "ceil_mode": False, "repeat": 3}
    # 10 s at 10 ms hop: 1001 frames → 501 → 251 → 126
    assert encoded_length(1001, dw_striding_x8) == 126
    assert encoded_length(1, dw_striding_x8) == 1
    assert encoded_length(1001, None) is None


def test_korean_character_vocabulary_detokenises_hangul() -> None:
    detok = CharDetokenizer([" ", "안", "녕", "하", "세", "요", "ㄱ"])
    assert detok.decode([1, 2, 3, 4, 5, 0, 6]) == "안녕하세요 ㄱ"


def test_bad_tokenizer_files_are_clear_errors(tmp_path) -> None:
    vocab = tmp_path / "vocab.json"
    vocab.write_text('{"not": "a list"}', encoding="utf-8")
    with pytest.raises(SubtoneError, match="not a JSON list"):
        load_detokenizer("chars", vocab)
    junk = tmp_path / "tokenizer.model"
    junk.write_bytes(b"not a sentencepiece model")
    with pytest.raises(SubtoneError, match="SentencePiece"):
        SentencePieceDetokenizer(junk)
    with pytest.raises(SubtoneError, match="unknown"):
        load_detokenizer("wordpiece", vocab)
