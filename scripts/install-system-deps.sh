#!/usr/bin/env bash
# Installs the system packages contactd needs when they are missing (Debian/Ubuntu):
# redis-server (the embedded default and the tests' private Redis) and python3-venv.
# Uses sudo when not root; never prompts when CI=true.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "contactd needs: ${missing[*]}. Install them with your package manager and retry." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "contactd needs: ${missing[*]} (apt-get install ${missing[*]}), and this user cannot install them." >&2
    exit 1
  fi
fi
echo "==> installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
