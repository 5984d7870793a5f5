#!/usr/bin/env bash
# Debian packages the project needs at run time: EGL/Mesa for headless MuJoCo rendering of the
# simulated cameras; libusb for pyrealsense2 (it does not import without it). Installs only what is missing; needs root (or sudo) when something is.
set -euo pipefail
needed=(libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri libglx-mesa0 libusb-1.0-0)
missing=()
for pkg in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "Installing Debian packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
