"""Whisper on ONNX Runtime: log-mel front end, cached decoder steps, tokenizer, loop guards."""
