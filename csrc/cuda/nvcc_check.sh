#!/usr/bin/env bash
# Compiles every csrc/cuda/*.cu with nvcc against the installed torch's
# headers, for sm_80 and sm_90, to check syntax and types where torch has no
# CUDA (the objects are thrown away; nothing is linked or run).
#
#   csrc/cuda/nvcc_check.sh [python]   (default: .venv/bin/python)
#
# A CPU build of torch ships the c10/cuda headers but not the one CMake
# generates for CUDA builds (c10/cuda/impl/cuda_cmake_macros.h); a stand-in
# that declares the shared-library build takes its place.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${1:-.venv/bin/python}
torch_include=$("$python" -c 'import torch.utils.cpp_extension as c; print(c.include_paths()[0])')
python_include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/c10/cuda/impl"
if [ ! -e "$torch_include/c10/cuda/impl/cuda_cmake_macros.h" ]; then
  printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' \
    > "$work/c10/cuda/impl/cuda_cmake_macros.h"
fi
for source in csrc/cuda/*.cu; do
  echo "nvcc: $source"
  # The flags of setup.py's CUDAExtension.
  nvcc -std=c++20 --expt-relaxed-constexpr -O2 -DWITH_CUDA \
    -I"$work" -I"$torch_include" -I"$torch_include/torch/csrc/api/include" \
    -I"$python_include" -Xcompiler -fPIC \
    -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
    -c "$source" -o "$work/$(basename "$source").o"
done
echo "nvcc: every CUDA source compiles"
