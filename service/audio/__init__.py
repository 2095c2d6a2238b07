"""Audio in: the models' sample format, recordings (`file`) and live capture (`capture`)."""

SAMPLE_RATE = 16_000
"""Every stage after capture works on 16 kHz mono float32."""
