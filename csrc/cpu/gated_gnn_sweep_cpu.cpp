// CPU kernel of ghnlib::gated_gnn_sweep.
#include "../gated_gnn_sweep.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <c10/util/irange.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

namespace ghnlib {
namespace {

// Nodes per parallel work item: one node costs about 10 H^2 multiply-adds.
constexpr int64_t kNodeGrain = 8;

// y = bias + W x for one row x, with W stored transposed ([in, out]) so that
// the inner loop runs over contiguous outputs and vectorises without
// reordering any sum.
template <typename scalar_t>
inline void affine(const scalar_t* __restrict__ x,
                   const scalar_t* __restrict__ weight_t,
                   const scalar_t* __restrict__ bias, int64_t in, int64_t out,
                   scalar_t* __restrict__ y) {
  for (int64_t j = 0; j < out; ++j) {
    y[j] = bias[j];
  }
  for (int64_t k = 0; k < in; ++k) {
    const scalar_t xk = x[k];
    const scalar_t* __restrict__ row = weight_t + k * out;
    for (int64_t j = 0; j < out; ++j) {
      y[j] += row[j] * xk;
    }
  }
}

template <typename scalar_t>
struct Mlp {
  const scalar_t* weight1_t;
  const scalar_t* bias1;
  const scalar_t* weight2_t;
  const scalar_t* bias2;

  // Linear -> ReLU -> Linear; `hidden` is scratch of H values.
  void operator()(const scalar_t* x, int64_t size, scalar_t* hidden,
                  scalar_t* y) const {
    affine(x, weight1_t, bias1, size, size, hidden);
    for (int64_t j = 0; j < size; ++j) {
      hidden[j] = hidden[j] > scalar_t(0) ? hidden[j] : scalar_t(0);
    }
    affine(hidden, weight2_t, bias2, size, size, y);
  }
};

template <typename scalar_t>
scalar_t sigmoid(scalar_t x) {
  return scalar_t(1) / (scalar_t(1) + std::exp(-x));
}

// Virtual edges, the bulk of the index (about 100 per node), come narrow:
// sources as int32 or int64 (`index_t`), lengths as any integer type that
// holds them (`dist_t`, one byte for the default cutoff of 50).
template <typename index_t, typename dist_t>
struct SweepIndex {
  const int64_t* order;
  const int64_t* level_ptr;
  int64_t num_levels;
  const int64_t* real_ptr;
  const int64_t* real_src;
  const int64_t* virtual_ptr;
  const index_t* virtual_src;
  const dist_t* virtual_dist;
};

// Every level in turn; the nodes of a level in parallel. A node reads the
// messages of nodes of earlier levels only and writes its own row of `h` and
// of `messages`, so the nodes of one level never race.
template <typename scalar_t, typename index_t, typename dist_t>
void sweep_kernel(scalar_t* h, scalar_t* messages,
                  const SweepIndex<index_t, dist_t>& index,
                  const Mlp<scalar_t>& mlp,
                  const Mlp<scalar_t>& mlp_ve, const scalar_t* weight_ih_t,
                  const scalar_t* weight_hh_t, const scalar_t* bias_ih,
                  const scalar_t* bias_hh, int64_t hidden) {
  const int64_t width = 2 * hidden;
  for (const auto level : c10::irange(index.num_levels)) {
    at::parallel_for(
        index.level_ptr[level], index.level_ptr[level + 1], kNodeGrain,
        [&](int64_t begin, int64_t end) {
          std::vector<scalar_t> scratch(8 * hidden);
          scalar_t* m = scratch.data();
          scalar_t* gates_i = m + hidden;
          scalar_t* gates_h = gates_i + 3 * hidden;
          scalar_t* act = gates_h + 3 * hidden;
          for (int64_t p = begin; p < end; ++p) {
            const int64_t v = index.order[p];
            for (int64_t j = 0; j < hidden; ++j) {
              m[j] = scalar_t(0);
            }
            for (int64_t e = index.real_ptr[p]; e < index.real_ptr[p + 1];
                 ++e) {
              const scalar_t* src = messages + index.real_src[e] * width;
              for (int64_t j = 0; j < hidden; ++j) {
                m[j] += src[j];
              }
            }
            for (int64_t e = index.virtual_ptr[p];
                 e < index.virtual_ptr[p + 1]; ++e) {
              const scalar_t* src =
                  messages + index.virtual_src[e] * width + hidden;
              // One division per edge rather than per entry: equal to
              // dividing each entry up to rounding.
              const scalar_t weight =
                  scalar_t(1) / static_cast<scalar_t>(index.virtual_dist[e]);
              for (int64_t j = 0; j < hidden; ++j) {
                m[j] += src[j] * weight;
              }
            }
            // GRU cell, gates in PyTorch's order (reset, update, new).
            scalar_t* hv = h + v * hidden;
            affine(m, weight_ih_t, bias_ih, hidden, 3 * hidden, gates_i);
            affine(hv, weight_hh_t, bias_hh, hidden, 3 * hidden, gates_h);
            for (int64_t j = 0; j < hidden; ++j) {
              const scalar_t reset = sigmoid(gates_i[j] + gates_h[j]);
              const scalar_t update =
                  sigmoid(gates_i[hidden + j] + gates_h[hidden + j]);
              const scalar_t candidate = std::tanh(
                  gates_i[2 * hidden + j] + reset * gates_h[2 * hidden + j]);
              hv[j] = (hv[j] - candidate) * update + candidate;
            }
            // A message depends on its source only: computed once per node.
            mlp(hv, hidden, act, messages + v * width);
            mlp_ve(hv, hidden, act, messages + v * width + hidden);
          }
        });
  }
}

// The MLP's weights transposed and its biases, all contiguous.
std::vector<at::Tensor> prepared_mlp(at::TensorList mlp) {
  return {mlp[0].t().contiguous(), mlp[1].contiguous(),
          mlp[2].t().contiguous(), mlp[3].contiguous()};
}

template <typename scalar_t>
Mlp<scalar_t> mlp_of(const std::vector<at::Tensor>& prepared) {
  return {prepared[0].const_data_ptr<scalar_t>(),
          prepared[1].const_data_ptr<scalar_t>(),
          prepared[2].const_data_ptr<scalar_t>(),
          prepared[3].const_data_ptr<scalar_t>()};
}

// The op's tensors, with the weights laid out for the kernel.
struct SweepArgs {
  at::Tensor out, messages;
  const at::Tensor &node_order, &level_ptr, &real_ptr, &real_src,
      &virtual_ptr, &virtual_src, &virtual_dist;
  std::vector<at::Tensor> mlp, mlp_ve;
  at::Tensor weight_ih_t, weight_hh_t, bias_ih, bias_hh;
};

template <typename scalar_t, typename index_t, typename dist_t>
void run_sweep(SweepArgs& args) {
  const SweepIndex<index_t, dist_t> index = {
      args.node_order.const_data_ptr<int64_t>(),
      args.level_ptr.const_data_ptr<int64_t>(),
      args.level_ptr.size(0) - 1,
      args.real_ptr.const_data_ptr<int64_t>(),
      args.real_src.const_data_ptr<int64_t>(),
      args.virtual_ptr.const_data_ptr<int64_t>(),
      args.virtual_src.const_data_ptr<index_t>(),
      args.virtual_dist.const_data_ptr<dist_t>()};
  sweep_kernel<scalar_t, index_t, dist_t>(
      args.out.data_ptr<scalar_t>(), args.messages.data_ptr<scalar_t>(),
      index, mlp_of<scalar_t>(args.mlp), mlp_of<scalar_t>(args.mlp_ve),
      args.weight_ih_t.const_data_ptr<scalar_t>(),
      args.weight_hh_t.const_data_ptr<scalar_t>(),
      args.bias_ih.const_data_ptr<scalar_t>(),
      args.bias_hh.const_data_ptr<scalar_t>(), args.out.size(1));
}

at::Tensor gated_gnn_sweep_cpu(const at::Tensor& h,
                               const at::Tensor& node_order,
                               const at::Tensor& level_ptr,
                               const at::Tensor& real_ptr,
                               const at::Tensor& real_src,
                               const at::Tensor& virtual_ptr,
                               const at::Tensor& virtual_src,
                               const at::Tensor& virtual_dist,
                               at::TensorList mlp,
                               at::TensorList mlp_ve,
                               at::TensorList gru) {
  check_gated_gnn_sweep_inputs(h, node_order, level_ptr, real_ptr, real_src,
                               virtual_ptr, virtual_src, virtual_dist, mlp,
                               mlp_ve, gru);
  SweepArgs args{h.contiguous().clone(),
                 at::zeros({h.size(0), 2 * h.size(1)}, h.options()),
                 node_order, level_ptr, real_ptr, real_src, virtual_ptr,
                 virtual_src, virtual_dist, prepared_mlp(mlp),
                 prepared_mlp(mlp_ve), gru[0].t().contiguous(),
                 gru[1].t().contiguous(), gru[2].contiguous(),
                 gru[3].contiguous()};
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "gated_gnn_sweep_cpu", [&] {
    using scalar = scalar_t;  // the dispatches below rebind scalar_t
    AT_DISPATCH_INDEX_TYPES(
        virtual_src.scalar_type(), "gated_gnn_sweep_cpu", [&] {
          AT_DISPATCH_SWITCH(
              virtual_dist.scalar_type(), "gated_gnn_sweep_cpu",
              AT_DISPATCH_CASE(at::kByte, [&] {
                run_sweep<scalar, index_t, scalar_t>(args);
              }) AT_DISPATCH_CASE(at::kShort, [&] {
                run_sweep<scalar, index_t, scalar_t>(args);
              }) AT_DISPATCH_CASE(at::kInt, [&] {
                run_sweep<scalar, index_t, scalar_t>(args);
              }) AT_DISPATCH_CASE(at::kLong, [&] {
                run_sweep<scalar, index_t, scalar_t>(args);
              }));
        });
  });
  return args.out;
}

}  // namespace

TORCH_LIBRARY_IMPL(ghnlib, CPU, m) {
  m.impl("gated_gnn_sweep", TORCH_FN(gated_gnn_sweep_cpu));
}

}  // namespace ghnlib
