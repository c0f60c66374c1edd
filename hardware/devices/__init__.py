"""The devices room: what a device is (`device`), the devices of this machine
(`available`, `opencl`, the JAX and CuPy runtimes), the fingerprint, allocation and
`$ANNC_HOME`. It imports no other room of `hardware`."""
