"""Installs missing pip packages into a folder private to the plugin and the QGIS profile.

pip packages are installed by QGIS's own Python into ``<profile>/python/landfusion-packages/
<python version>``, appended to ``sys.path`` when the plugin loads: never into the plugin folder
(an update would delete it), never into the system's site-packages (PEP 668 forbids it, and a pip
numpy 2 there breaks GDAL, scipy and scikit-learn in QGIS).

Installing is done in two pip runs so that nothing QGIS already has is ever replaced:

1. ``pip install --dry-run --report`` resolves the requirements against QGIS's Python (plus the
   private folder) with a constraints file pinning the numpy and scipy that Python already has;
   the report lists only the distributions that are missing.
2. ``pip install --target <private folder> --no-deps`` installs exactly those versions.

Which packages LandFusion needs is declared in :mod:`.dependencies`, whose command line users run
to install them (:data:`SCRIPT`). This module imports nothing from the plugin and never imports
qgis: the plugin calls :func:`configure` with the QGIS profile folder.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from typing import Callable, Iterable, List, Optional, Sequence

#: Packages that must never come from pip inside QGIS (they bundle their own GDAL/PROJ or must
#: match the numpy QGIS's GDAL bindings were built with).
NEVER_FROM_PIP = ("numpy", "gdal", "rasterio", "affine")
PRIVATE_FOLDER = "landfusion-packages"
#: The command line that installs LandFusion's packages (``install``) and lists them (``check``).
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dependencies.py")

_private_dir: Optional[str] = None


class InstallError(Exception):
    """Installing packages failed; the message says why and what to do."""


def version_tuple(text: str) -> tuple:
    """The leading numbers of a version string: ``"1.16.3rc1"`` gives ``(1, 16, 3)``."""
    parts = []
    for piece in str(text).split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def configure(settings_dir: str) -> str:
    """Puts the private package folder of the QGIS profile ``settings_dir`` on ``sys.path``.

    Called by the plugin when QGIS (desktop or ``qgis_process``) loads it. Returns the folder.
    """
    global _private_dir
    _private_dir = private_site_dir(settings_dir)
    activate(_private_dir)
    return _private_dir


def configured_dir() -> Optional[str]:
    """Returns the private package folder set by :func:`configure`, or None."""
    return _private_dir


def private_site_dir(settings_dir: str, version: Optional[Sequence[int]] = None) -> str:
    """Returns ``<settings_dir>/python/landfusion-packages/<major>.<minor>``.

    One folder per Python version: compiled wheels (onnxruntime) only work with the Python they
    were built for, and a QGIS upgrade may change the Python.
    """
    major, minor = (version or sys.version_info)[:2]
    return os.path.join(settings_dir, "python", PRIVATE_FOLDER, f"{major}.{minor}")


def activate(folder: str) -> bool:
    """Appends ``folder`` to ``sys.path`` (after QGIS's own packages, which always win)."""
    if not os.path.isdir(folder):
        return False
    if folder not in sys.path:
        sys.path.append(folder)
    importlib.invalidate_caches()
    return True


def python_candidates(executable: str = sys.executable, exec_prefix: str = sys.exec_prefix,
                      platform: str = sys.platform,
                      version: Sequence[int] = sys.version_info) -> List[str]:
    """Returns the places QGIS's Python interpreter may be, most likely first.

    Inside QGIS ``sys.executable`` is often QGIS itself (``/usr/bin/qgis``,
    ``qgis-bin.exe``, ``QGIS.app/Contents/MacOS/QGIS``), not a Python that can run pip:

    - Linux: the distribution's ``/usr/bin/python3.X`` (QGIS links against it);
    - Windows (OSGeo4W and the standalone installer): ``<prefix>/apps/Python3X/python.exe``
      (``sys.exec_prefix``) or ``<prefix>/bin/python3.exe`` beside ``qgis-bin.exe``;
    - macOS (official bundle): ``QGIS.app/Contents/MacOS/bin/python3``.
    """
    major, minor = version[:2]
    here = os.path.dirname(executable or "")
    name = os.path.basename(executable or "").lower()
    found = []
    # A Python inside QGIS's prefix (a venv, the bundled interpreter) is the one to use; a
    # "python3" found on PATH (pyenv, conda) may be another installation: tried last.
    inside = os.path.realpath(here).startswith(os.path.realpath(exec_prefix or "/nonexistent"))
    if name.startswith("python") and inside:
        found.append(executable)
    if platform.startswith("win"):
        for folder in (exec_prefix, here, os.path.join(os.path.dirname(here), "bin")):
            found += [os.path.join(folder, "python.exe"), os.path.join(folder, "python3.exe"),
                      os.path.join(folder, f"python{major}{minor}.exe")]
    elif platform == "darwin":
        for folder in (os.path.join(here, "bin"), os.path.join(exec_prefix, "bin"), here):
            found += [os.path.join(folder, f"python{major}.{minor}"),
                      os.path.join(folder, "python3")]
    else:
        for folder in (os.path.join(exec_prefix, "bin"), "/usr/bin", here):
            found += [os.path.join(folder, f"python{major}.{minor}"),
                      os.path.join(folder, "python3")]
    if name.startswith("python"):
        found.append(executable)
    unique = []
    for path in found:
        if path and path not in unique:
            unique.append(path)
    return unique


def find_python() -> Optional[str]:
    """Returns a Python interpreter of the same version as this one that can run pip, or None."""
    for candidate in python_candidates():
        if not os.path.isfile(candidate):
            continue
        try:
            proc = subprocess.run(
                [candidate, "-c", "import sys, pip; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=60, env=_clean_env())
        except (OSError, subprocess.SubprocessError):
            continue
        if proc.returncode == 0 and proc.stdout.strip() == "%d.%d" % sys.version_info[:2]:
            return candidate
    return None


def _clean_env(extra_path: Optional[str] = None) -> dict:
    """The environment for pip: no virtualenv or user-site leaking in, no Qt plugins."""
    env = dict(os.environ)
    for key in ("VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV", "PIP_USER", "PYTHONNOUSERSITE"):
        env.pop(key, None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), extra_path) if p)
    return env


def constraints_text(modules: Iterable[str] = ("numpy", "scipy")) -> str:
    """Returns pip constraints pinning the versions of ``modules`` this Python already has."""
    lines = []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except Exception:  # not installed: nothing to keep
            continue
        version = getattr(module, "__version__", "")
        if version:
            lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"


def _run(command: List[str], log: Callable[[str], None], is_cancelled: Callable[[], bool],
         env: dict) -> int:
    """Runs a command, streaming its output lines to ``log``; kills it on cancel."""
    log("$ " + " ".join(_quote(part) for part in command))
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, bufsize=1)
    try:
        for line in proc.stdout:
            line = line.rstrip()
            if line and "is ignored: it is neither a file nor a directory" not in line:
                log(line)
            if is_cancelled():
                proc.kill()
                break
        return proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _quote(part: str) -> str:
    return f'"{part}"' if (" " in part or not part) else part


def install(requirements: Sequence[str], target: str, python: Optional[str] = None,
            progress: Callable[[float], None] = lambda f: None,
            log: Callable[[str], None] = print,
            is_cancelled: Callable[[], bool] = lambda: False,
            extra_pip_args: Sequence[str] = ()) -> List[str]:
    """Installs ``requirements`` into ``target`` without touching anything Python already has.

    Args:
        requirements: pip requirement strings, e.g. ``["onnxruntime>=1.16"]``.
        target: the private folder (created if needed).
        python: the interpreter to run pip with; found with :func:`find_python` when None.
        extra_pip_args: passed to both pip runs (e.g. ``["--no-index", "--find-links", dir]``
            for an offline wheel folder, or ``["--proxy", url]``).

    Returns:
        ``name==version`` of every distribution installed (empty when all were satisfied).

    Raises:
        InstallError: no usable Python, pip failed (offline, proxy, no wheel for this platform),
            the resolution would change numpy/GDAL/rasterio, or the run was cancelled.
    """
    python = python or find_python()
    if not python:
        raise InstallError(
            "Could not find the Python interpreter QGIS uses (looked at: "
            + ", ".join(python_candidates()) + "). " + manual_instructions(requirements, target))
    os.makedirs(target, exist_ok=True)
    env = _clean_env(extra_path=target)
    with tempfile.TemporaryDirectory(prefix="landfusion-pip-") as tmp:
        constraints = os.path.join(tmp, "constraints.txt")
        with open(constraints, "w", encoding="utf-8") as handle:
            handle.write(constraints_text())
        log("Keeping QGIS's packages: " + (constraints_text().strip().replace("\n", ", ")
                                          or "nothing to pin"))
        report = os.path.join(tmp, "report.json")
        progress(0.05)
        code = _run([python, "-m", "pip", "install", "--dry-run", "--quiet", "--report", report,
                     "-c", constraints, *extra_pip_args, *requirements], log, is_cancelled, env)
        if is_cancelled():
            raise InstallError("Installation cancelled; nothing was installed.")
        if code != 0 or not os.path.isfile(report):
            raise InstallError("pip could not resolve " + ", ".join(requirements)
                               + f" (exit code {code}; see the log above). " + _failure_hints())
        with open(report, encoding="utf-8") as handle:
            wanted = [(item["metadata"]["name"], item["metadata"]["version"])
                      for item in json.load(handle).get("install", [])]
        forbidden = [f"{n}=={v}" for n, v in wanted if n.lower() in NEVER_FROM_PIP]
        if forbidden:
            raise InstallError(
                "Installing " + ", ".join(requirements) + " would also install "
                + ", ".join(forbidden) + " with pip, which would break GDAL inside QGIS. "
                "Install these from your system's or QGIS's packages instead.")
        if not wanted:
            log("Everything requested is already installed.")
            progress(1.0)
            return []
        pins = [f"{name}=={version}" for name, version in wanted]
        log("Installing: " + ", ".join(pins))
        progress(0.2)
        code = _run([python, "-m", "pip", "install", "--no-deps", "--upgrade", "--target", target,
                     "--no-warn-script-location", "--progress-bar", "off", "-c", constraints,
                     *extra_pip_args, *pins], log, is_cancelled, env)
        if is_cancelled():
            raise InstallError("Installation cancelled; the folder may hold a partial install: "
                               f"delete {target} and install again.")
        if code != 0:
            raise InstallError(f"pip failed (exit code {code}; see the log above). "
                               + _failure_hints())
    progress(0.9)
    activate(target)
    return pins


def verify(packages: Iterable, target: str, python: Optional[str] = None) -> List[str]:
    """Imports ``packages`` in a fresh QGIS Python with ``target`` on its path.

    Args:
        packages: :class:`.dependencies.Dependency` objects (import and minimum version
            checked) or module names (import checked).

    Returns:
        One problem per package that does not import, or whose imported copy is older than the
        minimum (another copy earlier on the path shadows the private folder); empty when all
        work.
    """
    python = python or find_python() or sys.executable
    wanted = [(p, p, "") if isinstance(p, str) else (p.import_name, p.pip_name, p.minimum)
              for p in packages]
    code = ("import importlib, json, sys\n"
            f"sys.path.append({target!r})\n"
            "found = {}\n"
            f"for name, dist in {[(n, d) for n, d, _ in wanted]!r}:\n"
            "    try:\n"
            "        module = importlib.import_module(name)\n"
            "        version = str(getattr(module, '__version__', '') or '')\n"
            "        if not version:\n"
            "            try:\n"
            "                from importlib.metadata import version as v\n"
            "                version = v(dist)\n"
            "            except Exception:\n"
            "                version = ''\n"
            "        found[name] = [True, version, getattr(module, '__file__', '') or '']\n"
            "    except Exception as exc:\n"
            "        found[name] = [False, str(exc).splitlines()[0] if str(exc) else "
            "type(exc).__name__, '']\n"
            "print(json.dumps(found))\n")
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300,
                          env=_clean_env())
    if proc.returncode != 0:
        return [f"the check itself failed: {proc.stderr.strip().splitlines()[-1:]}"]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    problems = []
    for name, _, minimum in wanted:
        ok, detail, where = found[name]
        if not ok:
            problems.append(f"{name}: {detail}")
        elif minimum and detail and version_tuple(detail) < version_tuple(minimum):
            problems.append(
                f"{name}: version {detail} from {where} is imported instead of the new copy "
                f"(older than {minimum}); remove that copy (pip uninstall, or your system's "
                "package manager) so the one in the private folder is used")
    return problems


def _failure_hints() -> str:
    return ("If this computer is offline, download the wheels on another machine with "
            "'pip download --only-binary=:all: --python-version "
            "%d.%d <packages>' and install from that folder (--no-index --find-links <folder>). "
            "Behind a proxy, set HTTPS_PROXY before starting QGIS or pass --proxy. "
            "No wheel for this platform: check that the package supports Python %d.%d here."
            % (sys.version_info[:2] + sys.version_info[:2]))


def manual_instructions(requirements: Sequence[str], target: Optional[str] = None) -> str:
    """Returns the command a user can run themselves to install ``requirements``."""
    target = target or _private_dir
    python = next((c for c in python_candidates() if os.path.isfile(c)), "python3")
    where = f' --target "{target}"' if target else ""
    return (f'Run: "{python}" "{SCRIPT}" install{where} '
            + " ".join(r.split(">=")[0] for r in requirements) + ".")


def default_settings_dir() -> str:
    """Returns the default QGIS 3 profile folder of this user on this platform."""
    if sys.platform.startswith("win"):
        base = os.path.join(os.environ.get("APPDATA", ""), "QGIS", "QGIS3")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Application Support/QGIS/QGIS3")
    else:
        base = os.path.join(os.environ.get("XDG_DATA_HOME") or os.path.expanduser(
            "~/.local/share"), "QGIS", "QGIS3")
    return os.path.join(base, "profiles", "default")
