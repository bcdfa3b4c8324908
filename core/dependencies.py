"""The Python packages LandFusion needs, declared once, and whether they work.

QGIS ships numpy and GDAL; rasterio, scipy and scikit-learn come from the operating system's
packages (so they use the same GDAL and numpy as QGIS); onnxruntime, onnx and skl2onnx come from
pip, installed into a folder private to the plugin and the QGIS profile by
:mod:`.package_installer`.

The module runs as a script too (it imports nothing from the plugin but its installer), which is
what headless users are told to run::

    /usr/bin/python3 <plugin>/core/dependencies.py check
    /usr/bin/python3 <plugin>/core/dependencies.py install --target <folder> onnxruntime

This module never imports qgis.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from typing import Iterable, List, NamedTuple, Optional, Sequence

if __package__:
    from . import package_installer as installer
else:  # run as a script: its folder is on sys.path
    import package_installer as installer

#: ``needed_by`` value of a package every algorithm needs.
ALL = "*"


@dataclass(frozen=True)
class Dependency:
    """One Python package: how to install it, import it, and who needs it.

    Attributes:
        pip_name: distribution name on PyPI.
        import_name: module imported to check it.
        minimum: lowest version that works.
        why: what it does for LandFusion (shown to users).
        needed_by: algorithm names (``landfusion:<name>``) that cannot run without it; ``ALL``.
        optional: the plugin is fully usable without it (only ``needed_by`` or an extra route
            of an algorithm use it); the installer offers it unticked.
        from_pip: the installer may install it with pip; otherwise it comes with QGIS or the
            operating system (``debian``/``osgeo4w`` name the packages).
        debian: Debian/Ubuntu package.
        osgeo4w: OSGeo4W package (Windows).
    """

    pip_name: str
    import_name: str
    minimum: str
    why: str
    needed_by: tuple = ()
    optional: bool = False
    from_pip: bool = True
    debian: str = ""
    osgeo4w: str = ""


DEPENDENCIES = (
    Dependency("numpy", "numpy", "1.21", "arrays: every computation", (ALL,), from_pip=False,
               debian="python3-numpy", osgeo4w="python3-numpy"),
    Dependency("GDAL", "osgeo.gdal", "3.4", "raster and vector input/output", (ALL,),
               from_pip=False, debian="python3-gdal", osgeo4w="python3-gdal"),
    Dependency("rasterio", "rasterio", "1.3", "block-wise raster reading, writing and warping",
               (ALL,), from_pip=False, debian="python3-rasterio", osgeo4w="python3-rasterio"),
    Dependency("scipy", "scipy", "1.6", "speckle filtering of Sentinel-1 bands, statistics",
               ("coregisterstack", "temporalfeatures", "changedetection"), from_pip=False,
               debian="python3-scipy", osgeo4w="python3-scipy"),
    Dependency("scikit-learn", "sklearn", "1.2", "training classifiers, validation metrics",
               ("trainclassifier", "trainchangemodel"), debian="python3-sklearn",
               osgeo4w="python3-scikit-learn"),
    Dependency("onnxruntime", "onnxruntime", "1.16", "running model files (ONNX inference)",
               ("trainclassifier", "classifyraster", "cnnclassify", "trainchangemodel",
                "landcoverchange")),
    Dependency("onnx", "onnx", "1.14", "reading and writing the metadata inside model files",
               ("trainclassifier", "classifyraster", "cnnclassify", "modelinfo",
                "trainchangemodel", "landcoverchange", "traincnn")),
    Dependency("skl2onnx", "skl2onnx", "1.16", "saving trained classifiers as ONNX model files",
               ("trainclassifier", "trainchangemodel")),
    Dependency("lightgbm", "lightgbm", "4.0",
               "the LightGBM choice of trainclassifier (fast gradient boosting)", optional=True),
    Dependency("onnxmltools", "onnxmltools", "1.12",
               "saving LightGBM classifiers as ONNX model files", optional=True),
    Dependency("ukis-csmask", "ukis_csmask", "1.0",
               "the CNN cloud/shadow models of cloudmask (the SCL route works without it)",
               optional=True),
    Dependency("torch", "torch", "2.0", "training CNNs (traincnn only; inference never needs it)",
               ("traincnn",), optional=True),
)


class Status(NamedTuple):
    """What :func:`check` found for one dependency."""

    dependency: Dependency
    version: Optional[str]
    ok: bool
    problem: str


def _installed_version(dep: Dependency) -> str:
    try:
        from importlib.metadata import version

        return version(dep.pip_name)
    except Exception:  # metadata absent (system packages without dist-info, frozen builds)
        return ""


def check(dep: Dependency, deep: bool = True) -> Status:
    """Checks one dependency: importable (``deep``) or findable, and not older than the minimum.

    ``deep=False`` only locates the module and reads its installed version: fast enough for
    the check when QGIS starts (importing onnxruntime, scikit-learn or torch takes seconds).
    """
    module = None
    try:
        if deep:
            module = importlib.import_module(dep.import_name)
        elif importlib.util.find_spec(dep.import_name) is None:
            return Status(dep, None, False, "not installed")
    except Exception as exc:  # any import failure means unusable
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Status(dep, None, False, f"not importable ({first})")
    version = str(getattr(module, "__version__", "") or "") or _installed_version(dep)
    if version and installer.version_tuple(version) < installer.version_tuple(dep.minimum):
        return Status(dep, version, False, f"version {version} is older than {dep.minimum}")
    return Status(dep, version or None, True, "")


def check_dependencies(include_optional: bool = True, deep: bool = True) -> List[Status]:
    """Returns the :class:`Status` of every dependency (optional ones too unless told not to)."""
    return [check(dep, deep) for dep in DEPENDENCIES if include_optional or not dep.optional]


def needs(dep: Dependency, algorithm: str) -> bool:
    """Tells whether algorithm ``algorithm`` (name without provider) cannot run without ``dep``."""
    return ALL in dep.needed_by or algorithm in dep.needed_by


def missing(algorithm: Optional[str] = None, include_optional: bool = False,
            deep: bool = True) -> List[Status]:
    """Returns the unusable dependencies: those ``algorithm`` needs, or all required ones."""
    if algorithm is not None:
        deps = [d for d in DEPENDENCIES if needs(d, algorithm)]
    else:
        deps = [d for d in DEPENDENCIES if include_optional or not d.optional]
    return [status for status in (check(d, deep) for d in deps) if not status.ok]


def requirements_for(deps: Iterable[Dependency]) -> List[str]:
    """Returns pip requirement strings (``name>=minimum``) for the pip-installable ``deps``."""
    return [f"{d.pip_name}>={d.minimum}" for d in deps if d.from_pip]


def missing_message(algorithm: Optional[str] = None) -> str:
    """Returns what is missing and how to install it, or '' when nothing is.

    With ``algorithm`` (a name like ``classifyraster``) only the packages it needs count.
    """
    bad = missing(algorithm)
    if not bad:
        return ""
    who = f"landfusion:{algorithm} needs" if algorithm else "LandFusion needs"
    lines = [who + " " + "; ".join(
        f"{s.dependency.pip_name} >= {s.dependency.minimum} for {s.dependency.why} "
        f"({s.problem})" for s in bad) + "."]
    system = [s.dependency for s in bad if not s.dependency.from_pip]
    pip = [s.dependency for s in bad if s.dependency.from_pip]
    if pip:
        lines.append("In QGIS: Plugins > LandFusion > Install Python dependencies "
                     "(installs into a folder private to your QGIS profile). Without the desktop: "
                     + installer.manual_instructions(requirements_for(pip)))
        debian = [d.debian for d in pip if d.debian]
        if debian:
            lines.append("On Debian/Ubuntu the system packages work as well: sudo apt install "
                         + " ".join(debian) + ".")
    if system:
        lines.append(
            "Install with your system's packages (these must match QGIS's GDAL and numpy, never "
            "from pip): Debian/Ubuntu 'sudo apt install "
            + " ".join(d.debian for d in system if d.debian) + "'; Windows: OSGeo4W setup, "
            "packages " + ", ".join(d.osgeo4w for d in system if d.osgeo4w) + ".")
    return " ".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: ``check`` lists the dependencies; ``install`` installs the missing ones."""
    import argparse

    parser = argparse.ArgumentParser(description="LandFusion's Python dependencies.")
    sub = parser.add_subparsers(dest="command", required=True)
    check_parser = sub.add_parser("check", help="list the dependencies and whether they work")
    check_parser.add_argument("--target", help="private folder (default: the default QGIS "
                                              "profile's), searched after QGIS's packages")
    inst = sub.add_parser("install", help="install pip packages into the private folder")
    inst.add_argument("--target", help="private folder (default: the default QGIS profile's)")
    inst.add_argument("--find-links", help="a folder of wheels (offline installation)")
    inst.add_argument("packages", nargs="*",
                      help="pip names (default: every missing required pip package)")
    args = parser.parse_args(argv)
    target = args.target or installer.private_site_dir(installer.default_settings_dir())
    installer.activate(target)
    if args.command == "check":
        for status in check_dependencies():
            dep = status.dependency
            print(f"{'ok' if status.ok else 'MISSING':8} {dep.pip_name:14} "
                  f"{status.version or '-':12} {dep.why}{' (optional)' if dep.optional else ''}"
                  + (f": {status.problem}" if status.problem else ""))
        return 0 if not missing() else 1
    if args.packages:
        by_name = {d.pip_name.lower(): d for d in DEPENDENCIES}
        deps = [by_name.get(p.lower(), Dependency(p, p, "0", "")) for p in args.packages]
    else:
        deps = [s.dependency for s in missing() if s.dependency.from_pip]
    requirements = requirements_for(deps)
    if not requirements:
        print("Nothing to install.")
        return 0
    extra = ["--no-index", "--find-links", args.find_links] if args.find_links else []
    try:
        installer.install(requirements, target, python=sys.executable, extra_pip_args=extra)
    except installer.InstallError as exc:
        print(f"install failed: {exc}", file=sys.stderr)
        return 1
    problems = installer.verify(deps, target, python=sys.executable)
    for problem in problems:
        print(f"does not import: {problem}", file=sys.stderr)
    if not problems:
        print(f"Installed into {target}; QGIS finds it when it loads LandFusion.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
