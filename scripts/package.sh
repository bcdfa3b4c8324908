#!/usr/bin/env bash
# Builds dist/landfusion-<version>.zip, installable with QGIS's "Install from ZIP".
# Only the plugin's runtime files go in: no tests, benchmarks, training scripts or caches.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=$(sed -n 's/^version=//p' "$ROOT/metadata.txt")
STAGE="$ROOT/build/package"
rm -rf "$STAGE" && mkdir -p "$STAGE/landfusion" "$ROOT/dist"
cd "$ROOT"
git ls-files -z -- metadata.txt __init__.py plugin.py README.md LICENSE requirements.txt \
    algorithms core ui resources | xargs -0 -I{} cp --parents {} "$STAGE/landfusion/"
(cd "$STAGE" && rm -f "$ROOT/dist/landfusion-$VERSION.zip" && /usr/bin/python3 -m zipfile -c "$ROOT/dist/landfusion-$VERSION.zip" landfusion)
echo "dist/landfusion-$VERSION.zip"
