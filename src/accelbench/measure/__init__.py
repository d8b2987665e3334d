"""Timing, statistics, FLOPs/MFU, telemetry, environment, ceilings, kernels, F1."""
