"""Devices, the variant library, timing, calibration, and the interpreter that runs IR."""
