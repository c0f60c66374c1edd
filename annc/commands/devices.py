"""`annc devices`: the devices annc can run kernels on here, and this machine's fingerprint."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from annc.commands.tables import add_wide_argument, console_for
from annc.hardware.devices.available import available_devices
from annc.hardware.devices.fingerprint import fingerprint

HELP = "show the devices found on this machine and its hardware fingerprint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report", choices=("table", "json"), default="table",
                        help="a table (default) or one JSON object on standard output")
    add_wide_argument(parser)


def run(args: argparse.Namespace) -> int:
    devices = available_devices()
    machine = fingerprint()
    if args.report == "json":
        print(json.dumps({
            "devices": [{"name": name, "description": d.description}
                        for name, d in devices.items()],
            "fingerprint": machine.as_dict(),
        }))
        return 0
    console = console_for(args)
    table = Table("device", "description", title="Devices")
    for name, device in devices.items():
        table.add_row(name, device.description)
    console.print(table)
    details = Table("", "", title=f"Fingerprint {machine.id}", show_header=False)
    details.add_row("CPU", f"{machine.cpu_model} ({machine.machine}), {machine.cores} cores")
    details.add_row("SIMD", " ".join(machine.simd) or "none detected")
    details.add_row("BLAS", machine.blas)
    details.add_row("accelerators", "; ".join(machine.accelerators) or "none")
    details.add_row("versions", ", ".join(f"{k} {v}" for k, v in machine.versions))
    console.print(details)
    return 0
