#!/usr/bin/env bash
# Regenerates screenshots/*.png from the console's real render code: the screen tests draw
# each state into a ratatui TestBackend (120x36), write it as Pango markup, and ImageMagick
# renders that with a monospace font. Run after changing a screen or a theme.
#   scripts/screenshots.sh            # all screens
# Needs ImageMagick with Pango (Debian: imagemagick) and fonts-dejavu.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
CONVERT=/usr/bin/convert
[ -x "$CONVERT" ] || CONVERT=convert
FONT="${SCREENSHOT_FONT:-DejaVu Sans Mono}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
PXELAB_SCREENSHOT_DIR="$out" cargo test -q --test tui_screens >/dev/null
mkdir -p screenshots
for f in "$out"/*.pango; do
  name=$(basename "$f" .pango)
  bg=$(cat "$out/$name.bg")
  args=()
  while IFS= read -r line || [ -n "$line" ]; do
    args+=("pango:<span font_family=\"$FONT\" font_size=\"10pt\">${line}</span>")
  done < "$f"
  "$CONVERT" -background "$bg" "${args[@]}" -append \
    -bordercolor "$bg" -border 14 -strip "screenshots/$name.png"
  echo "screenshots/$name.png"
done
