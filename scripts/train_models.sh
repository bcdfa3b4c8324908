#!/usr/bin/env bash
# Trains the bundled CNNs and writes them (ONNX with LandFusion metadata) to resources/models/.
#   scripts/train_models.sh            # all models
#   scripts/train_models.sh water      # only the Sentinel-1 water model
#   scripts/train_models.sh landcover  # only the S1+S2 land-cover model (shipped if it beats RF)
# PyTorch (CPU) is installed into its own .venv-train, never into .venv: plugin users do not need
# it. Needs the real chips in ../shared/data. Seeded, so a run reproduces the committed models.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv-train"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"

if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
if ! "$VENV/bin/python" -c "import torch, onnx" >/dev/null 2>&1; then
  constraints="$VENV/constraints.txt"
  # Keep Debian's numpy (rasterio and scikit-learn are built against it).
  /usr/bin/python3 -c "import numpy; print('numpy==' + numpy.__version__)" > "$constraints"
  # TORCH_PIP_ARGS may point pip at a CPU-only wheel index (the models train on CPU).
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c "$constraints" \
      ${TORCH_PIP_ARGS:-} "torch==$TORCH_VERSION" onnx
fi

which=("${@:-water landcover}")
cd "$ROOT/training"
for name in ${which[*]}; do
  case "$name" in
    water) nice -n 10 "$VENV/bin/python" train_sar_water.py ;;
    landcover) nice -n 10 "$VENV/bin/python" train_s1s2_landcover.py ;;
    *) echo "train_models.sh: unknown model '$name' (use water or landcover)" >&2; exit 2 ;;
  esac
done
