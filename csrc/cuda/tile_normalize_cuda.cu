// CUDA kernels of ghnlib::tile_normalize and its backward: one launch for the
// whole batch, whatever the number of tensors and their shapes.
#include "../tile_normalize.h"

#include <ATen/ATen.h>
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdint>
#include <limits>
#include <tuple>

namespace ghnlib {
namespace {

constexpr int kThreads = 256;
// Source elements per backward block: a fixed size, so that the partial sums
// of grad_scale and grad_shift (and their rounding) do not depend on the
// device or the launch configuration.
constexpr int64_t kBackwardChunk = 2048;

struct SourceSizes {
  int64_t size[4];
};

// Multiply and add rounded separately, never contracted into one fused
// multiply-add: the reference rounds x * a before adding b.
__device__ inline float mul_unfused(float x, float y) { return __fmul_rn(x, y); }
__device__ inline double mul_unfused(double x, double y) {
  return __dmul_rn(x, y);
}
__device__ inline float add_unfused(float x, float y) { return __fadd_rn(x, y); }
__device__ inline double add_unfused(double x, double y) {
  return __dadd_rn(x, y);
}

template <typename scalar_t, bool kHasShift>
__device__ inline scalar_t scale_shift(at::opmath_type<scalar_t> a, scalar_t x,
                                       at::opmath_type<scalar_t> b) {
  using opmath_t = at::opmath_type<scalar_t>;
  const scalar_t scaled =
      static_cast<scalar_t>(mul_unfused(static_cast<opmath_t>(x), a));
  if constexpr (kHasShift) {
    return static_cast<scalar_t>(
        add_unfused(static_cast<opmath_t>(scaled), b));
  } else {
    return scaled;
  }
}

// The tensor n whose output range [offsets[n], offsets[n + 1]) holds e;
// target sizes are positive, so offsets increase strictly.
__device__ inline int64_t tensor_of_element(const int64_t* offsets,
                                            int64_t num_tensors, int64_t e) {
  int64_t low = 0, high = num_tensors - 1;
  while (low < high) {
    const int64_t middle = (low + high + 1) / 2;
    if (offsets[middle] <= e) {
      low = middle;
    } else {
      high = middle - 1;
    }
  }
  return low;
}

// One thread per output element: consecutive threads write consecutive
// elements, and the reads gather from the (small, cached) source block.
// index_t is int32 where every per-tensor index fits, to keep the index
// divisions cheap.
template <typename scalar_t, typename index_t, bool kHasShift>
__global__ void tile_normalize_forward_kernel(
    const scalar_t* __restrict__ src, const int64_t* __restrict__ shapes,
    const int64_t* __restrict__ offsets, const scalar_t* __restrict__ scale,
    const scalar_t* __restrict__ shift, scalar_t* __restrict__ out,
    int64_t num_tensors, SourceSizes sizes, int64_t total) {
  using opmath_t = at::opmath_type<scalar_t>;
  const index_t s0 = sizes.size[0], s1 = sizes.size[1], s2 = sizes.size[2],
                s3 = sizes.size[3];
  const index_t source_numel = s0 * s1 * s2 * s3;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       e < total; e += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t n = tensor_of_element(offsets, num_tensors, e);
    const int64_t* target = shapes + 4 * n;
    const index_t t0 = target[0], t1 = target[1], t2 = target[2],
                  t3 = target[3];
    index_t local = static_cast<index_t>(e - offsets[n]);
    const index_t j3 = local % t3;
    local /= t3;
    const index_t j2 = local % t2;
    local /= t2;
    const index_t j1 = local % t1;
    const index_t j0 = local / t1;
    const index_t k0 = source_index<index_t>(j0, s0, t0, 0);
    const index_t k1 = source_index<index_t>(j1, s1, t1, 1);
    const index_t k2 = source_index<index_t>(j2, s2, t2, 2);
    const index_t k3 = source_index<index_t>(j3, s3, t3, 3);
    const scalar_t x = src[static_cast<index_t>(n) * source_numel +
                           ((k0 * s1 + k1) * s2 + k2) * s3 + k3];
    const opmath_t b = kHasShift ? static_cast<opmath_t>(shift[n]) : 0;
    out[e] = scale_shift<scalar_t, kHasShift>(static_cast<opmath_t>(scale[n]),
                                              x, b);
  }
}

// One block per (tensor n, chunk of its source elements), one thread per
// source element k: G[k] sums grad_out over the outputs that read k (see
// readers_of_source_index), so no two threads write the same place and no
// atomics are needed. grad_src = a * G; the block also reduces
// sum_k S[k] G[k] (grad_scale) and sum_k G[k] (grad_shift), as each output
// reads exactly one source element.
template <typename scalar_t, typename acc_t>
__global__ void tile_normalize_backward_kernel(
    const scalar_t* __restrict__ grad_out, const scalar_t* __restrict__ src,
    const int64_t* __restrict__ shapes, const int64_t* __restrict__ offsets,
    const scalar_t* __restrict__ scale, scalar_t* __restrict__ grad_src,
    acc_t* __restrict__ partial_scale, acc_t* __restrict__ partial_shift,
    SourceSizes sizes, int64_t chunks) {
  const int64_t* s = sizes.size;
  const int64_t source_numel = s[0] * s[1] * s[2] * s[3];
  const int64_t block = blockIdx.x;
  const int64_t n = block / chunks;
  const int64_t chunk_begin = (block % chunks) * kBackwardChunk;
  const int64_t chunk_end = source_numel < chunk_begin + kBackwardChunk
                                ? source_numel
                                : chunk_begin + kBackwardChunk;
  const int64_t* target = shapes + 4 * n;
  const scalar_t* grad = grad_out + offsets[n];
  const acc_t a = static_cast<acc_t>(scale[n]);
  acc_t sum_scale = 0, sum_shift = 0;
  for (int64_t flat = chunk_begin + threadIdx.x; flat < chunk_end;
       flat += blockDim.x) {
    ReadersOfSourceIndex readers[4];
    int64_t rest = flat;
    for (int d = 3; d >= 0; --d) {
      readers[d] = readers_of_source_index(
          rest % s[d], s[d], target[d],
          first_source_index(s[d], target[d], d));
      rest /= s[d];
    }
    acc_t gathered = 0;
    for (int64_t i0 = 0, j0 = readers[0].first; i0 < readers[0].count;
         ++i0, j0 += readers[0].step) {
      for (int64_t i1 = 0, j1 = readers[1].first; i1 < readers[1].count;
           ++i1, j1 += readers[1].step) {
        for (int64_t i2 = 0, j2 = readers[2].first; i2 < readers[2].count;
             ++i2, j2 += readers[2].step) {
          const scalar_t* row =
              grad + ((j0 * target[1] + j1) * target[2] + j2) * target[3];
          for (int64_t i3 = 0, j3 = readers[3].first; i3 < readers[3].count;
               ++i3, j3 += readers[3].step) {
            gathered += static_cast<acc_t>(row[j3]);
          }
        }
      }
    }
    const int64_t index = n * source_numel + flat;
    if (grad_src != nullptr) {
      grad_src[index] = static_cast<scalar_t>(a * gathered);
    }
    sum_scale += static_cast<acc_t>(src[index]) * gathered;
    sum_shift += gathered;
  }
  if (partial_scale == nullptr) {
    return;  // the same for every thread of the block
  }
  __shared__ acc_t shared_scale[kThreads];
  __shared__ acc_t shared_shift[kThreads];
  shared_scale[threadIdx.x] = sum_scale;
  shared_shift[threadIdx.x] = sum_shift;
  __syncthreads();
  // A fixed reduction tree: the same sums in the same order on every run.
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) {
      shared_scale[threadIdx.x] += shared_scale[threadIdx.x + width];
      shared_shift[threadIdx.x] += shared_shift[threadIdx.x + width];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    partial_scale[block] = shared_scale[0];
    partial_shift[block] = shared_shift[0];
  }
}

template <typename scalar_t, typename acc_t>
__global__ void sum_partials_kernel(const acc_t* __restrict__ partial_scale,
                                    const acc_t* __restrict__ partial_shift,
                                    scalar_t* __restrict__ grad_scale,
                                    scalar_t* __restrict__ grad_shift,
                                    int64_t num_tensors, int64_t chunks) {
  const int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (n >= num_tensors) {
    return;
  }
  acc_t sum_scale = 0, sum_shift = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    sum_scale += partial_scale[n * chunks + c];
    sum_shift += partial_shift[n * chunks + c];
  }
  if (grad_scale != nullptr) {
    grad_scale[n] = static_cast<scalar_t>(sum_scale);
  }
  if (grad_shift != nullptr) {
    grad_shift[n] = static_cast<scalar_t>(sum_shift);
  }
}

// shapes ([N, 4]) then offsets ([N + 1]) in one device buffer, copied
// without waiting for the stream.
at::Tensor layout_on_device(const TileNormalizeLayout& layout,
                            const at::Device& device) {
  return at::cat({layout.shapes.reshape(-1), layout.offsets})
      .to(at::TensorOptions().device(device).dtype(at::kLong),
          /*non_blocking=*/true);
}

int64_t blocks_for(int64_t work) {
  const int64_t blocks = (work + kThreads - 1) / kThreads;
  const int64_t limit = std::numeric_limits<int32_t>::max();
  return blocks < limit ? blocks : limit;
}

at::Tensor& tile_normalize_out_cuda(const at::Tensor& src,
                                    const at::Tensor& shapes,
                                    const at::Tensor& offsets,
                                    const at::Tensor& scale,
                                    const std::optional<at::Tensor>& shift,
                                    at::Tensor& out) {
  const auto layout =
      check_tile_normalize_inputs(src, shapes, offsets, scale, shift);
  check_tile_normalize_out(out, src, layout);
  const c10::cuda::CUDAGuard device_guard(src.device());
  const bool has_shift = shift.has_value() && shift->defined();
  const auto src_c = src.contiguous();
  const auto scale_c = scale.contiguous();
  const auto shift_c = has_shift ? shift->contiguous() : at::Tensor();
  if (layout.total == 0) {
    return out;
  }
  const auto device_layout = layout_on_device(layout, src.device());
  const int64_t* shapes_data = device_layout.const_data_ptr<int64_t>();
  const int64_t* offsets_data = shapes_data + 4 * layout.num_tensors;
  const SourceSizes sizes = {{layout.source_sizes[0], layout.source_sizes[1],
                              layout.source_sizes[2],
                              layout.source_sizes[3]}};
  const int64_t source_elements = src_c.numel();
  const bool use_int32 =
      source_elements <= std::numeric_limits<int32_t>::max() &&
      layout.total <= std::numeric_limits<int32_t>::max();
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const auto blocks = blocks_for(layout.total);

  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, src.scalar_type(), "tile_normalize_cuda", [&] {
        const scalar_t* src_data = src_c.const_data_ptr<scalar_t>();
        const scalar_t* scale_data = scale_c.const_data_ptr<scalar_t>();
        const scalar_t* shift_data =
            has_shift ? shift_c.const_data_ptr<scalar_t>() : nullptr;
        scalar_t* out_data = out.mutable_data_ptr<scalar_t>();
        auto launch = [&](auto index_tag, auto shift_tag) {
          using index_t = decltype(index_tag);
          constexpr bool kHasShift = decltype(shift_tag)::value;
          tile_normalize_forward_kernel<scalar_t, index_t, kHasShift>
              <<<blocks, kThreads, 0, stream>>>(
                  src_data, shapes_data, offsets_data, scale_data, shift_data,
                  out_data, layout.num_tensors, sizes, layout.total);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        };
        if (use_int32) {
          has_shift ? launch(int32_t{}, std::true_type{})
                    : launch(int32_t{}, std::false_type{});
        } else {
          has_shift ? launch(int64_t{}, std::true_type{})
                    : launch(int64_t{}, std::false_type{});
        }
      });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> tile_normalize_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& src, const at::Tensor& shapes,
    const at::Tensor& offsets, const at::Tensor& scale,
    std::array<bool, 3> output_mask) {
  const auto layout =
      check_tile_normalize_inputs(src, shapes, offsets, scale, std::nullopt);
  check_tile_normalize_grad(grad_out, src, layout);
  const bool need_src = output_mask[0], need_scale = output_mask[1],
             need_shift = output_mask[2];
  if (!need_src && !need_scale && !need_shift) {
    return {at::Tensor(), at::Tensor(), at::Tensor()};
  }
  const c10::cuda::CUDAGuard device_guard(src.device());
  const auto grad_c = grad_out.contiguous();
  const auto src_c = src.contiguous();
  const auto scale_c = scale.contiguous();
  const int64_t num_tensors = layout.num_tensors;
  const auto& s = layout.source_sizes;
  const int64_t source_numel = s[0] * s[1] * s[2] * s[3];
  const int64_t chunks = (source_numel + kBackwardChunk - 1) / kBackwardChunk;
  const bool need_sums = need_scale || need_shift;

  at::Tensor grad_src = need_src ? at::empty_like(src_c) : at::Tensor();
  at::Tensor grad_scale = need_scale ? at::empty_like(scale_c) : at::Tensor();
  at::Tensor grad_shift = need_shift ? at::empty_like(scale_c) : at::Tensor();
  if (num_tensors == 0) {
    return {grad_src, grad_scale, grad_shift};
  }
  TORCH_CHECK(num_tensors * chunks <= std::numeric_limits<int32_t>::max(),
              "ghnlib::tile_normalize_backward: ", num_tensors, " tensors of ",
              source_numel, " source elements need more CUDA blocks than one "
              "launch allows; split the batch.");
  const auto device_layout = layout_on_device(layout, src.device());
  const int64_t* shapes_data = device_layout.const_data_ptr<int64_t>();
  const int64_t* offsets_data = shapes_data + 4 * num_tensors;
  const SourceSizes sizes = {{s[0], s[1], s[2], s[3]}};
  const auto stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, src.scalar_type(),
      "tile_normalize_backward_cuda", [&] {
        using acc_t = at::acc_type<scalar_t, /*is_cuda=*/true>;
        const auto acc_dtype = c10::CppTypeToScalarType<acc_t>::value;
        at::Tensor partial_scale, partial_shift;
        if (need_sums) {
          partial_scale = at::empty({num_tensors * chunks},
                                    src.options().dtype(acc_dtype));
          partial_shift = at::empty_like(partial_scale);
        }
        tile_normalize_backward_kernel<scalar_t, acc_t>
            <<<num_tensors * chunks, kThreads, 0, stream>>>(
                grad_c.const_data_ptr<scalar_t>(),
                src_c.const_data_ptr<scalar_t>(), shapes_data, offsets_data,
                scale_c.const_data_ptr<scalar_t>(),
                need_src ? grad_src.mutable_data_ptr<scalar_t>() : nullptr,
                need_sums ? partial_scale.mutable_data_ptr<acc_t>() : nullptr,
                need_sums ? partial_shift.mutable_data_ptr<acc_t>() : nullptr,
                sizes, chunks);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        if (need_sums) {
          sum_partials_kernel<scalar_t, acc_t>
              <<<blocks_for(num_tensors), kThreads, 0, stream>>>(
                  partial_scale.const_data_ptr<acc_t>(),
                  partial_shift.const_data_ptr<acc_t>(),
                  need_scale ? grad_scale.mutable_data_ptr<scalar_t>()
                             : nullptr,
                  need_shift ? grad_shift.mutable_data_ptr<scalar_t>()
                             : nullptr,
                  num_tensors, chunks);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        }
      });
  return {grad_src, grad_scale, grad_shift};
}

}  // namespace

TORCH_LIBRARY_IMPL(ghnlib, CUDA, m) {
  m.impl("tile_normalize.out", TORCH_FN(tile_normalize_out_cuda));
  m.impl("tile_normalize_backward", TORCH_FN(tile_normalize_backward_cuda));
}

}  // namespace ghnlib
