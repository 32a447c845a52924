#!/usr/bin/env bash
# Installs the Debian packages fsr needs that are missing, through
# apt-get (as root, or through sudo). Usage: deps.sh [--test]
#   --test   also install what the test suite needs: NumPy, to check
#            that np.load reads every array fsr writes, and Pillow, to
#            write test images.
set -euo pipefail

packages=(cmake make gcc pkg-config libpng-dev libjpeg62-turbo-dev
          libfftw3-dev libopenblas-openmp-dev libcjson-dev libcairo2-dev
          libssl-dev fonts-dejavu-core)
if [[ "${1:-}" == "--test" ]]; then
    packages+=(python3 python3-numpy python3-pil)
fi

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$p")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

echo "deps.sh: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null; then
        echo "deps.sh: error: need root or sudo to install: ${missing[*]}" >&2
        exit 1
    fi
    sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q >/dev/null
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >/dev/null
echo "deps.sh: installed ${#missing[@]} packages" >&2
