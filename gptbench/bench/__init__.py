"""Measuring a training run: devices, the train step, the timing harness, FLOPs and MFU, the machine."""
