// ghnlib::gated_gnn_sweep, shared by the schema file (gated_gnn_sweep.cpp)
// and the CPU kernel (cpu/): the entry point and the input checks.
#pragma once

#include <ATen/core/Tensor.h>

namespace ghnlib {

// Entry point: calls the op through the dispatcher.
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
                           at::TensorList gru);

// Validates the shapes, dtypes and devices of the arguments of
// ghnlib::gated_gnn_sweep and raises ValueError naming the argument, the
// expectation and the fix. It reads no values: the layout (a permutation in
// node_order, pointers that run from 0 to the number of edges, node ids in
// range, path lengths of at least 1) is built once per schedule and checked
// there, by ghnlib.ops.check_sweep_layout, not on every sweep.
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
                                  at::TensorList gru);

}  // namespace ghnlib
