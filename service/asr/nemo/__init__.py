"""NVIDIA NeMo models (CTC, RNN-T, TDT) exported by `subtone export nemo`: numpy decoders, tokenizers."""
