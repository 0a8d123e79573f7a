#!/usr/bin/env bash
# Install what qforge's build, tests and demo need on Debian 12, only when
# something is missing. Idempotent; called by make (check, demo).
set -euo pipefail
PKGS=(build-essential pkg-config protobuf-c-compiler libprotobuf-c-dev libonnx-dev
      libonnx-testdata dataset-fashion-mnist zlib1g-dev libzstd-dev libcjson-dev libstb-dev
      libopenblas-dev python3 python3-numpy python3-onnx python3-torch python3-torchvision
      nodejs npm chromium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# nodejs from another source may already provide npm
if [[ " ${missing[*]} " == *" npm "* ]] && command -v npm >/dev/null; then
  missing=("${missing[@]/npm}")
fi
if [[ " ${missing[*]} " == *" nodejs "* ]] && command -v node >/dev/null; then
  missing=("${missing[@]/nodejs}")
fi
missing=($(printf '%s\n' "${missing[@]}" | sed '/^$/d'))
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# ONNX Runtime for the interop tests (npm; its CPU library ships inside).
ORT_DIR="$(dirname "$0")/../tests/node"
if [[ ! -d "$ORT_DIR/node_modules/onnxruntime-node" || ! -d "$ORT_DIR/node_modules/puppeteer-core" ]]; then
  echo "install-deps: npm install (onnxruntime-node, puppeteer-core) into tests/node"
  (cd "$ORT_DIR" && npm install --ignore-scripts --no-audit --no-fund >/dev/null)
fi
echo "install-deps: ok"
