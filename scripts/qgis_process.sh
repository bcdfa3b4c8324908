#!/usr/bin/env bash
# Runs QGIS's qgis_process with LandFusion loaded from this checkout, e.g.
#   scripts/qgis_process.sh list
#   scripts/qgis_process.sh run landfusion:spectralindices -- INPUT=s2.tif OUTPUT=indices.tif
# A private QGIS profile under .qgis/ is used, so the user's own QGIS settings are untouched.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE="${LANDFUSION_QGIS_STATE:-$ROOT/.qgis}"
VENV="$ROOT/.venv"
QGIS_PROCESS=/usr/bin/qgis_process.bin   # Debian's qgis_process wrapper passes a flag 3.22 rejects

if [ ! -x "$QGIS_PROCESS" ] || [ ! -x "$VENV/bin/python" ]; then
  echo "qgis_process.sh: run 'make setup' first (QGIS or .venv missing)" >&2
  exit 2
fi
mkdir -p "$STATE/plugins" "$STATE/home" "$STATE/runtime"
chmod 700 "$STATE/runtime"
ln -sfn "$ROOT" "$STATE/plugins/landfusion"

export HOME="$STATE/home"
export XDG_RUNTIME_DIR="$STATE/runtime"
export QGIS_PLUGINPATH="$STATE/plugins"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"

profile_ini="$HOME/.local/share/QGIS/QGIS3/profiles/default/QGIS/QGIS3.ini"
if ! grep -qs '^landfusion=true' "$profile_ini"; then
  "$QGIS_PROCESS" plugins enable landfusion >/dev/null 2>&1 || {
    echo "qgis_process.sh: could not enable the landfusion plugin:" >&2
    "$QGIS_PROCESS" plugins enable landfusion >&2 || true
    exit 2
  }
fi
exec "$QGIS_PROCESS" "$@"
