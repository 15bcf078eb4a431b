#!/usr/bin/env bash
# Debian packages Baton's tools and tests use, listed in scripts/apt/*.txt. Installs only what is missing; needs root
# (or sudo) when it does.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t want < <(cat scripts/apt/*.txt | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$' | sort -u)
missing=()
for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "system-packages: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
