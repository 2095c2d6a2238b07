"""Emotion model factory: data, the prototype baseline, our log-mel CNN, training, evaluation, ONNX export."""
