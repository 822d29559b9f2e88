// ghnlib::gated_gnn_sweep: one sweep of the GHN's gated graph neural network
// (ghnlib.nn.GatedGNN) for inference, the schema, the entry point and the
// input checks. The kernel lives in cpu/; autograd/ registers that there is
// no backward (training runs the sweep with PyTorch ops).
#include "gated_gnn_sweep.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <algorithm>
#include <initializer_list>
#include <sstream>
#include <string>

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

// An int64 vector of `length` entries (any length where it is negative).
void check_index(const at::Tensor& tensor, const char* name, int64_t length) {
  check_vector(tensor, name, {at::kLong}, "int64");
  if (length >= 0) {
    TORCH_CHECK_VALUE(tensor.size(0) == length, kOp, name, " must have ",
                      length, " entries, got ", tensor.size(0), ".");
  }
}

// The virtual edges' sources (int32 or int64) and lengths (any of uint8,
// int16, int32, int64), one length per source.
void check_virtual_edges(const at::Tensor& virtual_src,
                         const at::Tensor& virtual_dist) {
  check_vector(virtual_src, "virtual_src", {at::kInt, at::kLong},
               "int32 or int64");
  check_vector(virtual_dist, "virtual_dist",
               {at::kByte, at::kShort, at::kInt, at::kLong},
               "uint8/int16/int32/int64 (integer path lengths)");
  TORCH_CHECK_VALUE(virtual_dist.size(0) == virtual_src.size(0), kOp,
                    "virtual_dist must have one length per virtual edge (",
                    virtual_src.size(0), "), got ", virtual_dist.size(0), ".");
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
  check_index(level_ptr, "level_ptr", -1);
  TORCH_CHECK_VALUE(level_ptr.size(0) >= 1, kOp,
                    "level_ptr must have at least one entry (where level 0 "
                    "starts), got none.");
  check_index(real_ptr, "real_ptr", num_nodes + 1);
  check_index(real_src, "real_src", -1);
  check_index(virtual_ptr, "virtual_ptr", num_nodes + 1);
  check_virtual_edges(virtual_src, virtual_dist);
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

at::Tensor gated_gnn_sweep(const at::Tensor& h,
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
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("ghnlib::gated_gnn_sweep", "")
                       .typed<decltype(gated_gnn_sweep)>();
  return op.call(h, node_order, level_ptr, real_ptr, real_src, virtual_ptr,
                 virtual_src, virtual_dist, mlp, mlp_ve, gru);
}

TORCH_LIBRARY_FRAGMENT(ghnlib, m) {
  m.def(
      "gated_gnn_sweep(Tensor h, Tensor node_order, Tensor level_ptr, "
      "Tensor real_ptr, Tensor real_src, Tensor virtual_ptr, "
      "Tensor virtual_src, Tensor virtual_dist, Tensor[] mlp, "
      "Tensor[] mlp_ve, Tensor[] gru) -> Tensor");
}

}  // namespace ghnlib
