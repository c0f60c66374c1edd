"""What a lent GPU machine offers annc, checked before `gpu_run.sh` spends its time.

    python scripts/gpu_preflight.py --require gpu --json environment.json

Prints and writes: the Python and library versions annc uses, the devices JAX
and CuPy see, annc's devices, its fingerprint, the variant modules skipped for
a missing library, and how many variants each device and backend has. Exits 3
with one line saying what is missing when annc has no `--require` device (for
`gpu`: JAX or CuPy sees no CUDA GPU).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
from collections import Counter
from pathlib import Path
from typing import Any

LIBRARIES = ("numpy", "scipy", "jax", "jaxlib", "optax", "rich", "xdsl", "lark", "cupy",
             "halide", "pytest")


def _version(module: str) -> str:
    try:
        return str(getattr(importlib.import_module(module), "__version__", "unknown"))
    except Exception as error:  # absent, or broken: both are worth reporting
        return f"absent ({type(error).__name__})"


def _jax_devices() -> list[str]:
    import jax

    return [f"{d.platform}:{d.id} {d.device_kind}" for d in jax.devices()]


def _cupy_devices() -> list[str]:
    from annc.hardware.devices.cupy_runtime import cupy_module

    cupy = cupy_module()
    if cupy is None:
        return []
    count = cupy.cuda.runtime.getDeviceCount()
    return [cupy.cuda.runtime.getDeviceProperties(i)["name"].decode() for i in range(count)]


def survey() -> dict[str, Any]:
    """Everything this script reports, as one JSON-able dict."""
    from annc.hardware.devices.available import available_devices
    from annc.hardware.devices.fingerprint import fingerprint
    from annc.hardware.variants import all_variants, load_library, skipped_modules

    load_library()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": {name: _version(name) for name in LIBRARIES},
        "jax_devices": _jax_devices(),
        "cupy_devices": _cupy_devices(),
        "annc_devices": {name: d.description for name, d in available_devices().items()},
        "fingerprint": fingerprint().as_dict(),
        "skipped_modules": skipped_modules(),
        "variants": {f"{device} {backend}": n for (device, backend), n in sorted(
            Counter((v.device, v.backend) for v in all_variants()).items())},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--require", default="gpu", help="the device annc must have")
    parser.add_argument("--json", type=Path, help="also write the survey here")
    args = parser.parse_args(argv)
    found = survey()
    text = json.dumps(found, indent=1)
    print(text)
    if args.json is not None:
        args.json.write_text(text)
    if args.require not in found["annc_devices"]:
        seen = (f"JAX sees {', '.join(found['jax_devices']) or 'nothing'}; CuPy sees "
                f"{', '.join(found['cupy_devices']) or 'no GPU'}")
        print(f"gpu_preflight: annc has no {args.require} device ({seen})", file=sys.stderr)
        return 3
    if args.require == "gpu" and not found["cupy_devices"]:
        print("gpu_preflight: note: CuPy sees no GPU; only the JAX variants run on it",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
