#!/usr/bin/env bash
# Debian packages the tests and benchmarks need: the anchors (plastimatch, dicom3tools' dciodvfy),
# headless OpenGL for rendering (Mesa EGL), and chromium for the browser tests.
set -euo pipefail
packages=(plastimatch dicom3tools chromium libegl1 libegl-mesa0 libgl1-mesa-dri libgl1)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
