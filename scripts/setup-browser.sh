#!/usr/bin/env bash
# Browser tests drive Debian's Chromium (Playwright never downloads a browser here) with CJK
# fonts so Chinese renders. Installed when missing and we are root; otherwise those tests skip
# (and fail under CI=true).
set -uo pipefail
if [[ -x /usr/bin/chromium ]] && fc-list 2>/dev/null | grep -qi "noto.*cjk"; then
  exit 0
fi
if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
  echo "== installing chromium and fonts-noto-cjk for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null \
    || echo "could not install chromium; browser tests will skip (or fail under CI=true)"
else
  echo "chromium not found and not root: browser tests will be skipped"
fi
exit 0
