"""Devices, the variant library, measuring, calibration, and the executable plans that run IR.

Rooms, one direction of dependency: `devices` ← `variants` ← `measure` ← `calibration`;
`execution` uses `devices` and `variants` only. import-linter keeps it so."""
