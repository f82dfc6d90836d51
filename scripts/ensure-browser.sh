#!/usr/bin/env bash
# The console's browser test drives Debian's chromium through Playwright (never a downloaded
# browser). Install the package when it is missing.
set -u
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "installing Debian's chromium for the console's browser test"
if [ "$(id -u)" = 0 ]; then
  SUDO=""
else
  SUDO="sudo -n"
fi
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
[ -x /usr/bin/chromium ] || { echo "could not install chromium: apt-get install chromium" >&2; exit 1; }
