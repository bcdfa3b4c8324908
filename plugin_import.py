"""Makes this checkout importable as the package ``landfusion``, as QGIS imports the plugin.

The repository root is the plugin folder, but it is checked out under any name. Tests,
benchmarks, training and scripts call :func:`make_importable` (one line after putting the
repository root on ``sys.path``); it links ``.qgis/plugins/landfusion`` to the checkout, puts
that folder first on ``sys.path`` and on ``PYTHONPATH`` (for child processes), and returns it.
This file is a development aid: it is not shipped in the plugin zip.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PLUGINS = ROOT / ".qgis" / "plugins"
#: Where Debian's QGIS keeps the Processing plugin (``import processing``).
QGIS_PLUGINS = "/usr/share/qgis/python/plugins"


def make_importable(qgis_plugins: bool = False) -> str:
    """Links the checkout as ``landfusion`` and makes it importable; returns the plugins folder.

    Args:
        qgis_plugins: also make QGIS's own Python plugins (``processing``) importable.
    """
    PLUGINS.mkdir(parents=True, exist_ok=True)
    link = PLUGINS / "landfusion"
    if not link.exists():
        try:
            link.symlink_to(ROOT, target_is_directory=True)
        except FileExistsError:  # created meanwhile by a parallel process
            pass
    folders = [str(PLUGINS)]
    if str(PLUGINS) not in sys.path:
        sys.path.insert(0, str(PLUGINS))
    if qgis_plugins and os.path.isdir(QGIS_PLUGINS):
        if QGIS_PLUGINS not in sys.path:
            sys.path.append(QGIS_PLUGINS)
        folders.append(QGIS_PLUGINS)
    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(PLUGINS)] + [p for p in current if p != str(PLUGINS)])
    return str(PLUGINS)
