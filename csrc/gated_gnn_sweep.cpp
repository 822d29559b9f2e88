// ghnlib::gated_gnn_sweep: one sweep of the GHN's gated graph neural network
// (ghnlib.nn.GatedGNN) for inference, the schema and the input checks. The
// kernel lives in cpu/. There is no backward: training runs the sweep with
// PyTorch ops, and calling this op on tensors that require a gradient raises
// when the gradient is asked for.
#include "gated_gnn_sweep.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/util/irange.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include <algorithm>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

namespace ghnlib {
namespace {

constexpr const char* kOp = "ghnlib::gated_gnn_sweep: ";

std::string shape_string(const at::Tensor& tensor) {
  std::ostringstream out;
  out << tensor.sizes();
  return out.str();
}

// A contiguous 1-D CPU tensor of one of `dtypes` (described as `kinds`).
void check_vector(const at::Tensor& tensor, const char* name,
                  std::initializer_list<at::ScalarType> dtypes,
                  const char* kinds) {
  const bool known = std::find(dtypes.begin(), dtypes.end(),
                               tensor.scalar_type()) != dtypes.end();
  TORCH_CHECK_VALUE(known && tensor.dim() == 1 && tensor.is_cpu() &&
                        tensor.is_contiguous(),
                    kOp, name, " must be a contiguous 1-D ", kinds,
                    " CPU tensor, got ", tensor.scalar_type(), " ",
                    shape_string(tensor), " on ", tensor.device(), ".");
}

void check_index(const at::Tensor& tensor, const char* name, int64_t length) {
  check_vector(tensor, name, {at::kLong}, "int64");
  if (length >= 0) {
    TORCH_CHECK_VALUE(tensor.size(0) == length, kOp, name, " must have ",
                      length, " entries, got ", tensor.size(0), ".");
  }
}

// A CSR pointer: starts at 0, never decreases, ends at the number of edges.
void check_pointer(const at::Tensor& ptr, const char* name,
                   int64_t num_entries) {
  const int64_t* p = ptr.const_data_ptr<int64_t>();
  const int64_t n = ptr.size(0);
  TORCH_CHECK_VALUE(n >= 1 && p[0] == 0 && p[n - 1] == num_entries, kOp, name,
                    " must run from 0 to ", num_entries, ", got ",
                    n ? p[0] : -1, " to ", n ? p[n - 1] : -1, ".");
  for (const auto i : c10::irange(1, n)) {
    TORCH_CHECK_VALUE(p[i] >= p[i - 1], kOp, name,
                      " must be non-decreasing (entry ", i, ").");
  }
}

template <typename index_t>
void check_in_range(const at::Tensor& index, const char* name,
                    int64_t bound) {
  const index_t* p = index.const_data_ptr<index_t>();
  for (const auto i : c10::irange(index.size(0))) {
    TORCH_CHECK_VALUE(p[i] >= 0 && p[i] < bound, kOp, name, "[", i, "] = ",
                      p[i], " is not a node id in [0, ", bound, ").");
  }
}

// The virtual edges' sources (int32 or int64) and lengths (any of uint8,
// int16, int32, int64; at least 1).
void check_virtual_edges(const at::Tensor& virtual_src,
                         const at::Tensor& virtual_dist, int64_t num_nodes) {
  check_vector(virtual_src, "virtual_src", {at::kInt, at::kLong},
               "int32 or int64");
  check_vector(virtual_dist, "virtual_dist",
               {at::kByte, at::kShort, at::kInt, at::kLong},
               "uint8/int16/int32/int64 (integer path lengths)");
  TORCH_CHECK_VALUE(virtual_dist.size(0) == virtual_src.size(0), kOp,
                    "virtual_dist must have one length per virtual edge (",
                    virtual_src.size(0), "), got ", virtual_dist.size(0), ".");
  AT_DISPATCH_INDEX_TYPES(virtual_src.scalar_type(), "check_virtual_edges",
                          [&] {
                            check_in_range<index_t>(virtual_src,
                                                    "virtual_src", num_nodes);
                          });
  if (virtual_dist.numel() > 0) {
    const int64_t shortest = virtual_dist.min().item<int64_t>();
    TORCH_CHECK_VALUE(shortest >= 1, kOp, "virtual_dist holds ", shortest,
                      ", which is not a path length (at least 1).");
  }
}

void check_weight(const at::Tensor& tensor, const at::Tensor& h,
                  const char* name, at::IntArrayRef shape) {
  TORCH_CHECK_VALUE(tensor.sizes() == shape, kOp, name, " must have shape ",
                    shape, ", got ", shape_string(tensor), ".");
  TORCH_CHECK_VALUE(tensor.scalar_type() == h.scalar_type() &&
                        tensor.device() == h.device(),
                    kOp, name, " must be a ", h.scalar_type(), " tensor on ",
                    h.device(), " like h, got ", tensor.scalar_type(), " on ",
                    tensor.device(), ".");
}

void check_mlp(at::TensorList mlp, const at::Tensor& h, const char* name) {
  const int64_t hidden = h.size(1);
  TORCH_CHECK_VALUE(mlp.size() == 4, kOp, name,
                    " must be [weight1, bias1, weight2, bias2] of "
                    "Linear -> ReLU -> Linear, got ",
                    mlp.size(), " tensors.");
  check_weight(mlp[0], h, name, {hidden, hidden});
  check_weight(mlp[1], h, name, {hidden});
  check_weight(mlp[2], h, name, {hidden, hidden});
  check_weight(mlp[3], h, name, {hidden});
}

}  // namespace

void check_gated_gnn_sweep_inputs(const at::Tensor& h,
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
  TORCH_CHECK_VALUE(h.dim() == 2, kOp, "h must have shape [N, H], got ",
                    shape_string(h), ".");
  TORCH_CHECK_VALUE(
      h.scalar_type() == at::kFloat || h.scalar_type() == at::kDouble, kOp,
      "h must be float32 or float64, got ", h.scalar_type(),
      "; run other dtypes through ghnlib.nn.GatedGNN's PyTorch path.");
  const int64_t num_nodes = h.size(0), hidden = h.size(1);
  check_index(node_order, "node_order", num_nodes);
  check_in_range<int64_t>(node_order, "node_order", num_nodes);
  std::vector<bool> seen(num_nodes, false);
  const int64_t* order = node_order.const_data_ptr<int64_t>();
  for (const auto p : c10::irange(num_nodes)) {
    TORCH_CHECK_VALUE(!seen[order[p]], kOp, "node_order must visit every "
                      "node once, but node ", order[p], " comes twice.");
    seen[order[p]] = true;
  }
  check_index(level_ptr, "level_ptr", -1);
  check_pointer(level_ptr, "level_ptr", num_nodes);
  check_index(real_ptr, "real_ptr", num_nodes + 1);
  check_index(real_src, "real_src", -1);
  check_pointer(real_ptr, "real_ptr", real_src.size(0));
  check_in_range<int64_t>(real_src, "real_src", num_nodes);
  check_index(virtual_ptr, "virtual_ptr", num_nodes + 1);
  check_virtual_edges(virtual_src, virtual_dist, num_nodes);
  check_pointer(virtual_ptr, "virtual_ptr", virtual_src.size(0));
  check_mlp(mlp, h, "mlp");
  check_mlp(mlp_ve, h, "mlp_ve");
  TORCH_CHECK_VALUE(gru.size() == 4, kOp,
                    "gru must be [weight_ih, weight_hh, bias_ih, bias_hh] of "
                    "a GRUCell, got ",
                    gru.size(), " tensors.");
  check_weight(gru[0], h, "gru weight_ih", {3 * hidden, hidden});
  check_weight(gru[1], h, "gru weight_hh", {3 * hidden, hidden});
  check_weight(gru[2], h, "gru bias_ih", {3 * hidden});
  check_weight(gru[3], h, "gru bias_hh", {3 * hidden});
}

TORCH_LIBRARY_FRAGMENT(ghnlib, m) {
  m.def(
      "gated_gnn_sweep(Tensor h, Tensor node_order, Tensor level_ptr, "
      "Tensor real_ptr, Tensor real_src, Tensor virtual_ptr, "
      "Tensor virtual_src, Tensor virtual_dist, Tensor[] mlp, "
      "Tensor[] mlp_ve, Tensor[] gru) -> Tensor");
}

TORCH_LIBRARY_IMPL(ghnlib, Autograd, m) {
  m.impl("gated_gnn_sweep",
         torch::autograd::autogradNotImplementedFallback());
}

}  // namespace ghnlib
