"""Devices, the variant library, timing, calibration, and the executable plans that run IR."""
