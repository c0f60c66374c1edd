"""The learning curve of adaptation: models of one day scored on another day's measurements.

    .venv/bin/python benchmarks/adaptation_curve.py NEW.sqlite [--note TEXT]

NEW.sqlite holds measurements of this machine taken at another time than the
shipped reference data the default models were trained on (for example `annc
calibrate --budget 600 --db NEW.sqlite`). This runs `annc evaluate --against
NEW.sqlite` in a fresh `$ANNC_HOME` (so the shipped models, unadapted, are the
prior) and writes its learning curve — median held-out MAPE over combinations
after adapting to k = 0, 5, 10, 25 rows per combination, for each form of
correction, and for models retrained from scratch on all of the new rows — to
`benchmarks/results/adaptation_curve.md` and `.json`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", type=Path)
    parser.add_argument("--note", default="", help="how the new measurements were taken")
    args = parser.parse_args()
    annc = Path(sys.executable).with_name("annc")
    environment = {**os.environ, "ANNC_HOME": tempfile.mkdtemp(prefix="annc-curve-")}
    done = subprocess.run([str(annc), "evaluate", "--against", str(args.database), "--report",
                           "json"], capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    result = json.loads(done.stdout)
    ks = list(dict.fromkeys(point["k"] for point in result["curve"]))
    lines = ["| corrections | " + " | ".join(f"k = {k}" for k in ks) + " |",
             "|---|" + "---|" * len(ks)]
    for name in dict.fromkeys(point["corrections"] for point in result["curve"]):
        values = {p["k"]: p["median_mape"] for p in result["curve"] if p["corrections"] == name}
        lines.append(f"| {name} | " + " | ".join(
            "-" if values.get(k) is None else f"{values[k]:.1f}%" for k in ks) + " |")
    text = "\n".join([
        "# Adaptation: models of one day, measurements of another", "",
        f"{datetime.date.today().isoformat()}. Command: `python benchmarks/adaptation_curve.py "
        f"{args.database.name}`. Models: {result['models']}. Measurements: "
        f"{result['measurements']}{'; ' + args.note if args.note else ''}. Median over "
        f"{result['combinations']} combinations of the held-out MAPE "
        f"({result['test_rows']} rows) after adapting to the first k training rows of each "
        "combination; the last row retrains every model from scratch on all the new "
        "training rows.", "", *lines, "",
    ])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "adaptation_curve.md").write_text(text)
    (RESULTS / "adaptation_curve.json").write_text(json.dumps(result, indent=1))
    print(text)


if __name__ == "__main__":
    main()
