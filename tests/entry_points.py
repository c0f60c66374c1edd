"""Installing an entry point for a test, as pip would, without pip."""

from __future__ import annotations

from pathlib import Path


def install_entry_point(site: Path, distribution: str, value: str,
                        group: str = "annc.variants") -> Path:
    """Installs an entry point the way pip does, as a distribution's metadata in a
    `site` folder that is then put on `sys.path` (`value`, e.g. `module:function`, is
    found on the path as it is)."""
    info = site / f"{distribution.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\n"
                                   "Version: 0.1\n")
    name = value.split(":")[-1]
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {value}\n")
    return site
