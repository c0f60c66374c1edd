"""The measuring room: the timing harness (`timing`), seeded operands (`operands`) and the
worker process that measures variants apart from the command (`worker`). It imports the
devices and the variants, nothing of calibration or execution."""
