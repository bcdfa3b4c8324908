#!/usr/bin/env bash
# Installs everything LandFusion needs on Debian 12; safe to run again (does only what is missing).
#  - Debian packages: QGIS 3.22 with its Python bindings, GDAL, rasterio, scikit-learn, pytest.
#  - .venv (from /usr/bin/python3 with --system-site-packages) for pip-only packages.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
APT_PACKAGES=(qgis python3-qgis qgis-providers gdal-bin python3-gdal python3-rasterio
              python3-sklearn python3-scipy python3-pytest python3-venv python3-pip xvfb)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi

stamp="$VENV/.requirements.sha"
want=$(cat "$ROOT/requirements.txt" "$ROOT/requirements-optional.txt" "$ROOT/requirements-dev.txt" "$0" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing pip packages into $VENV"
  constraints="$VENV/constraints.txt"
  # Keep Debian's numpy (GDAL, rasterio and scipy are built against it).
  /usr/bin/python3 -c "import numpy; print('numpy==' + numpy.__version__)" > "$constraints"
  # torch==...+cpu (requirements-optional.txt) is a CPU-only build: a local wheel folder
  # configured for pip (PIP_FIND_LINKS / pip.conf find-links) has it; otherwise PyTorch's CPU
  # index does. TORCH_PIP_ARGS overrides the choice.
  if [ -z "${TORCH_PIP_ARGS+x}" ]; then
    TORCH_PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"
    links=$("$VENV/bin/python" -m pip config get global.find-links 2>/dev/null || true)
    for folder in ${PIP_FIND_LINKS:-} $links; do
      if compgen -G "$folder/torch-*+cpu-*.whl" >/dev/null; then TORCH_PIP_ARGS=""; fi
    done
  fi
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $TORCH_PIP_ARGS \
      -c "$constraints" -r "$ROOT/requirements.txt" -r "$ROOT/requirements-optional.txt" \
      -r "$ROOT/requirements-dev.txt"
  for forbidden in rasterio numpy affine; do
    if "$VENV/bin/python" -m pip show --quiet "$forbidden" >/dev/null 2>&1 \
       && [ -d "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/$forbidden" ]; then
      echo "setup: $forbidden must come from Debian, not pip; remove it from $VENV" >&2
      exit 1
    fi
  done
  echo "$want" > "$stamp"
fi
"$VENV/bin/python" - <<'PY'
import importlib, sys
for name in ("qgis.core", "osgeo.gdal", "rasterio", "sklearn", "onnxruntime", "skl2onnx", "onnx", "pytest",
             "torch"):
    importlib.import_module(name)
import numpy, rasterio, torch
assert numpy.__file__.startswith("/usr/lib/python3/"), numpy.__file__
assert rasterio.__file__.startswith("/usr/lib/python3/"), rasterio.__file__
print("setup: ok (QGIS, GDAL, rasterio %s, numpy %s from Debian; onnxruntime, torch %s in .venv)"
      % (rasterio.__version__, numpy.__version__, torch.__version__))
PY
