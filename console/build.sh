#!/usr/bin/env bash
# Vendors the console's chart library into meao/console/static/vendor/ (committed), so that `pip install`
# needs no Node and the page works with no network. Run it after changing package.json:
#   cd console && npm install --ignore-scripts && ./build.sh
# It installs exactly what package-lock.json pins (npm ci, no install scripts) and copies the dist files
# and the licence; tests/console/test_vendor.py checks the copy against the lock file.
set -euo pipefail
cd "$(dirname "$0")"
out=../meao/console/static/vendor
npm ci --ignore-scripts --no-audit --no-fund
version=$(node -p 'require("./node_modules/uplot/package.json").version')
mkdir -p "$out"
cp node_modules/uplot/dist/uPlot.esm.js "$out/uPlot.esm.js"
cp node_modules/uplot/dist/uPlot.min.css "$out/uPlot.min.css"
cp node_modules/uplot/LICENSE "$out/uPlot.LICENSE"
sha() { sha256sum "$1" | cut -d' ' -f1; }
cat > "$out/vendor.json" <<JSON
{
  "uplot": {
    "version": "$version",
    "license": "MIT",
    "files": {
      "uPlot.esm.js": "$(sha "$out/uPlot.esm.js")",
      "uPlot.min.css": "$(sha "$out/uPlot.min.css")",
      "uPlot.LICENSE": "$(sha "$out/uPlot.LICENSE")"
    }
  }
}
JSON
echo "vendored uPlot $version into $out"
