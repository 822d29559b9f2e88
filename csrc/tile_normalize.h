// ghnlib::tile_normalize, shared by the schema file (tile_normalize.cpp), the
// autograd kernel (autograd/) and the CPU and CUDA kernels (cpu/, cuda/): the
// entry points, the input checks and the per-dimension index map of the op.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/macros/Macros.h>

#include <array>
#include <cstdint>
#include <optional>
#include <tuple>

namespace ghnlib {

// Entry points: each calls the op through the dispatcher, which runs the
// kernel of the tensors' backend (and the autograd kernel where a gradient
// is wanted).
at::Tensor tile_normalize(const at::Tensor& src,
                          const at::Tensor& shapes,
                          const at::Tensor& offsets,
                          const at::Tensor& scale,
                          const std::optional<at::Tensor>& shift);

at::Tensor& tile_normalize_out(const at::Tensor& src,
                               const at::Tensor& shapes,
                               const at::Tensor& offsets,
                               const at::Tensor& scale,
                               const std::optional<at::Tensor>& shift,
                               at::Tensor& out);

std::tuple<at::Tensor, at::Tensor, at::Tensor> tile_normalize_backward(
    const at::Tensor& grad_out,
    const at::Tensor& src,
    const at::Tensor& shapes,
    const at::Tensor& offsets,
    const at::Tensor& scale,
    std::array<bool, 3> output_mask);

// Host-side view of the op's metadata, read once by the checks so that the
// kernels need no device synchronisation.
struct TileNormalizeLayout {
  int64_t num_tensors;
  std::array<int64_t, 4> source_sizes;
  at::Tensor shapes;   // int64 [N, 4] on the host, contiguous
  at::Tensor offsets;  // int64 [N + 1] on the host, contiguous
  int64_t total;       // offsets[N]: elements in the flat output
};

// Validates the arguments of ghnlib::tile_normalize (and of its backward,
// which shares them) and raises ValueError naming the argument, the
// expectation and the fix. Every kernel runs it before any work. Besides
// shapes, dtypes and devices it reads the N target shapes and N + 1 offsets
// (host metadata that the kernels read anyway to lay out their work), since
// offsets that disagree with the shapes would make the kernels read and
// write out of bounds.
TileNormalizeLayout check_tile_normalize_inputs(
    const at::Tensor& src,
    const at::Tensor& shapes,
    const at::Tensor& offsets,
    const at::Tensor& scale,
    const std::optional<at::Tensor>& shift);

// The `out` of ghnlib::tile_normalize.out: 1-D, contiguous, offsets[N]
// elements, the dtype and device of src.
void check_tile_normalize_out(const at::Tensor& out, const at::Tensor& src,
                              const TileNormalizeLayout& layout);

void check_tile_normalize_grad(const at::Tensor& grad_out,
                               const at::Tensor& src,
                               const TileNormalizeLayout& layout);

// pi_d(0): where output index 0 of dimension `dim` reads the source.
// Channel dimensions (0, 1) slice from the start, spatial dimensions (2, 3)
// around the centre; a target larger than the source tiles it from 0.
C10_HOST_DEVICE inline int64_t first_source_index(int64_t source,
                                                  int64_t target,
                                                  int dim) {
  return (target <= source && dim >= 2) ? (source - target) / 2 : 0;
}

// pi_d(j) for any j of the target.
template <typename index_t>
C10_HOST_DEVICE inline index_t source_index(index_t j, index_t source,
                                            index_t target, int dim) {
  if (target <= source) {
    return j + (dim >= 2 ? (source - target) / 2 : 0);
  }
  return j % source;
}

// The output indices j of one dimension that read source index k, an
// arithmetic sequence {first + i * step : 0 <= i < count}: at most one
// index where the target slices the source from `offset`, every source-th
// index from k where it tiles it.
struct ReadersOfSourceIndex {
  int64_t first;
  int64_t step;
  int64_t count;
};

C10_HOST_DEVICE inline ReadersOfSourceIndex readers_of_source_index(
    int64_t k, int64_t source, int64_t target, int64_t offset) {
  if (target <= source) {
    const int64_t j = k - offset;
    return {j, 1, (j >= 0 && j < target) ? 1 : 0};
  }
  return {k, source, (target - k + source - 1) / source};
}

}  // namespace ghnlib
