"""The execution room: the executable plan (`plan`), made from IR (`planning`), its steps
(`steps`), values and their copies per device (`residency`), the memory estimate
(`memory`) and a workload's run-time data (`rundata`). It uses the devices and the
variants only."""
