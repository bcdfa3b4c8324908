#!/usr/bin/env bash
# Builds dist/landfusion-<version>.zip, installable with QGIS's "Install from ZIP" and suitable
# for the QGIS plugin repository. Only the plugin's runtime files go in: no tests, benchmarks,
# training scripts or caches; model cards only for the models that are shipped; the scripts the
# help and error messages point to (scripts/write_model_metadata.py).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=$(sed -n 's/^version=//p' "$ROOT/metadata.txt")
STAGE="$ROOT/build/package"
ZIP="$ROOT/dist/landfusion-$VERSION.zip"
MAX_BYTES=$((25 * 1024 * 1024))   # the QGIS plugin repository's upload limit
rm -rf "$STAGE" && mkdir -p "$STAGE/landfusion" "$ROOT/dist"
cd "$ROOT"
for required in LICENSE metadata.txt; do
  git ls-files --error-unmatch "$required" >/dev/null 2>&1 || {
    echo "package: $required is not tracked by git" >&2; exit 1; }
done
git ls-files -z -- metadata.txt __init__.py plugin.py README.md LICENSE requirements.txt \
    algorithms core ui resources docs/*.md docs/*.png scripts/write_model_metadata.py \
  | while IFS= read -r -d '' file; do
      case "$file" in
        resources/models/*.md|resources/models/*.metrics.json)
          # a model card travels only with its model
          stem=${file%.md}; stem=${stem%.metrics.json}
          if [ "$(basename "$file")" != README.md ] && [ ! -f "$stem.onnx" ]; then continue; fi ;;
      esac
      cp --parents "$file" "$STAGE/landfusion/"
    done
rm -f "$ZIP"
(cd "$STAGE" && /usr/bin/python3 -m zipfile -c "$ZIP" landfusion)
size=$(stat -c %s "$ZIP")
if [ "$size" -ge "$MAX_BYTES" ]; then
  echo "package: $ZIP is $size bytes, above the plugin repository's 25 MB limit" >&2
  exit 1
fi
echo "dist/landfusion-$VERSION.zip"
