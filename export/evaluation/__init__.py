"""ASR evaluation used by bench/ and the tests: WER, English text normalisation, pipeline replay."""
