"""The console's production build: JavaScript and CSS a first visit downloads, gzip-compressed.

    .venv/bin/python bench/console_build.py [--no-build]

Builds frontend/ (``npm run build``; ``--no-build`` measures the dist/ already there), then reads
dist/index.html for the assets a first load fetches (its scripts, module preloads and styles) and
gzips each at level 9, as a CDN or WhiteNoise's compressed copies would serve them. Goal (issue
#15): at most 250 KB of JavaScript, gzipped, for the first load. Exits 1 when the goal is not met.
"""

from __future__ import annotations

import argparse
import gzip
import re
import subprocess
import sys
from pathlib import Path

FRONTEND = Path(__file__).resolve().parents[1] / "frontend"
DIST = FRONTEND / "dist"
GOAL_JS_GZIP_KB = 250.0
ASSET = re.compile(r"""(?:src|href)="/static/(assets/[^"]+\.(?:js|css))\"""")


def first_load_assets(index_html: str) -> list[str]:
    return sorted(set(ASSET.findall(index_html)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-build", action="store_true", help="measure the existing dist/")
    args = parser.parse_args()
    if not args.no_build:
        subprocess.run(["npm", "run", "build"], cwd=FRONTEND, check=True, capture_output=True)
    index = DIST / "index.html"
    if not index.is_file():
        print("frontend/dist/index.html is missing: build first (cd frontend && npm run build)")
        return 2
    assets = first_load_assets(index.read_text())
    js_raw = js_gzip = css_gzip = 0
    print(f"{'asset':<40} {'bytes':>10} {'gzip':>10}")
    for name in assets:
        data = (DIST / name).read_bytes()
        packed = len(gzip.compress(data, compresslevel=9))
        print(f"{name:<40} {len(data):>10,} {packed:>10,}")
        if name.endswith(".js"):
            js_raw += len(data)
            js_gzip += packed
        else:
            css_gzip += packed
    js_kb = js_gzip / 1024
    css_kb = css_gzip / 1024
    print(
        f"first-load JavaScript: {js_raw / 1024:.1f} KB, {js_kb:.1f} KB gzip;",
        f"CSS {css_kb:.1f} KB gzip",
    )
    met = js_kb <= GOAL_JS_GZIP_KB
    print(f"goal <= {GOAL_JS_GZIP_KB:.0f} KB gzip of JavaScript: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
