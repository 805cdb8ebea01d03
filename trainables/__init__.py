"""What tuner tunes: a PyTorch trainable for human-activity recognition, its models and data.

Plain PyTorch; the only Ray Tune calls are the per-epoch report and checkpoint in `har.train`.
"""
