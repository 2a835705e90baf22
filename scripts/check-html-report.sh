#!/usr/bin/env bash
# Renders an `asi-check replay --html` report in a real browser and checks what a reader sees.
#
#   scripts/check-html-report.sh [COUNTEREXAMPLE.json] [OUTDIR]
#
# Replays COUNTEREXAMPLE (default: the first counterexamples/rfc-v2--*.json) with --html, then has
# headless Chromium (Debian: `apt-get install -y chromium`; override with CHROMIUM=/path) take a
# screenshot (OUTDIR/report.png, 1400x2000) and dump the DOM it built (OUTDIR/report.dom.html).
# Passes when the DOM has the summary, steps, CPU and page-table sections and highlights what the
# violation names (a page-table entry, a frame, an ASI, or the CPU at the failing step), and the
# report loads nothing from outside. OUTDIR defaults to a
# fresh temporary directory; the browser profile is always a fresh one inside it.
# Exit status: 0 pass, 1 a check failed, 2 cannot run (no browser, replay refused the file).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
file=${1:-$(ls "$root"/counterexamples/rfc-v2--*.json | head -1)}
out=${2:-$(mktemp -d "${TMPDIR:-/tmp}/asi-report.XXXXXX")}
chromium=${CHROMIUM:-chromium}
command -v "$chromium" >/dev/null || { echo "check-html-report: $chromium not found (apt-get install -y chromium)" >&2; exit 2; }
mkdir -p "$out"

# Exit 1 means the counterexample reproduces; both it and 0 give a report.
status=0
node "$root/bin/asi-check.js" replay "$file" --html "$out/report.html" >"$out/replay.txt" || status=$?
if [ "$status" -gt 1 ]; then echo "check-html-report: replay failed (exit $status), see $out/replay.txt" >&2; exit 2; fi

# Running as root needs --no-sandbox; the rest keeps Chromium off the network and out of $HOME.
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
  --disable-component-update --disable-sync --user-data-dir="$out/profile" --window-size=1400,2000)
timeout 120 "$chromium" "${flags[@]}" --screenshot="$out/report.png" "file://$out/report.html" >/dev/null 2>&1
timeout 120 "$chromium" "${flags[@]}" --dump-dom "file://$out/report.html" >"$out/report.dom.html" 2>/dev/null

fail=0
check() { # check DESCRIPTION PATTERN FILE: grep -E for PATTERN, report the outcome
  if grep -Eq -- "$2" "$3"; then echo "ok   $1"; else echo "FAIL $1" >&2; fail=1; fi
}
if [ -s "$out/report.png" ]; then echo 'ok   screenshot taken'; else echo 'FAIL no screenshot' >&2; fail=1; fi
check 'summary section' '<section id="summary">' "$out/report.dom.html"
check 'steps section' '<section id="steps">' "$out/report.dom.html"
check 'CPU section' '<section id="cpus">' "$out/report.dom.html"
check 'page-table section' '<section id="pagetables">' "$out/report.dom.html"
check 'what the violation names is highlighted' '<(tr|td|th|h3) class="([^"]* )?hit[" ]' "$out/report.dom.html"
if grep -Eq '(src|href)=|url\(|https?://' "$out/report.html"; then echo "FAIL the report loads something from outside" >&2; fail=1; else echo 'ok   self-contained'; fi
echo "report: $out/report.html"
echo "screenshot: $out/report.png"
exit "$fail"
