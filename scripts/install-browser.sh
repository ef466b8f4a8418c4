#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium).
# Never fails the build: where Chromium cannot be installed, the browser tests report themselves
# as skipped (a failure when CRM_TEST_REQUIRE_ALL=1, as in CI).
set -uo pipefail

CHROMIUM="${CRM_TEST_CHROMIUM:-/usr/bin/chromium}"
# A font that draws Chinese, so that the screenshots the browser tests keep show text, not boxes.
has_chinese_font() { command -v fc-list >/dev/null && [ -n "$(fc-list :lang=zh 2>/dev/null | head -n 1)" ]; }
[ -x "$CHROMIUM" ] && has_chinese_font && exit 0

if ! command -v apt-get >/dev/null; then
  echo "install-browser: no apt-get here; install Chromium at $CHROMIUM to run the browser tests" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "install-browser: not root and no password-less sudo; run 'sudo apt-get install chromium' to run the browser tests" >&2
    exit 0
  fi
fi
echo "install-browser: installing Debian's chromium and fonts-wqy-microhei packages"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q chromium fonts-wqy-microhei >/dev/null 2>&1 \
  || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q chromium fonts-wqy-microhei >/dev/null 2>&1; } \
  || echo "install-browser: 'apt-get install chromium fonts-wqy-microhei' failed; the browser tests may be skipped" >&2
exit 0
