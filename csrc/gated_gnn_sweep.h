// Shared by the schema translation unit and the CPU kernel of
// ghnlib::gated_gnn_sweep: the input checks.
#pragma once

#include <ATen/core/Tensor.h>

namespace ghnlib {

// Validates the arguments of ghnlib::gated_gnn_sweep and raises ValueError
// naming the argument, the expectation and the fix.
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
