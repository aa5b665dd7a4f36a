#!/usr/bin/env bash
# Installs the system packages contactd needs when they are missing (Debian/Ubuntu):
# redis-server (the embedded default and the tests' private Redis), python3-venv, and
# nodejs + npm (only to fetch the browser pages' socket.io-client at install time).
# With --test (or CONTACTD_TEST_DEPS=1) also Debian's chromium, which the real-browser
# tests drive through Playwright (Playwright's own browser downloads are not used), and
# prometheus for its promtool (the metrics test runs `promtool check metrics`).
# Uses sudo when not root; never prompts when CI=true.
set -euo pipefail

want_test=${CONTACTD_TEST_DEPS:-0}
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    *) echo "usage: $0 [--test]" >&2; exit 2 ;;
  esac
done

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "$want_test" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  # promtool (checks the /metrics exposition in tests) comes with Debian's prometheus
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "contactd needs: ${missing[*]}. Install them with your package manager and retry." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
    # never wait for a password prompt in CI
    [ "${CI:-}" = "true" ] && SUDO="sudo -n"
  else
    echo "contactd needs: ${missing[*]} (apt-get install ${missing[*]}), and this user cannot install them." >&2
    exit 1
  fi
fi
echo "==> installing system packages: ${missing[*]}"
# env: sudo does not pass the caller's environment on
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
