// The autograd kernel of ghnlib::tile_normalize: its backward is the op
// ghnlib::tile_normalize_backward, which has no derivative of its own, and
// the out variant writes into a given buffer without a gradient.
#include "../tile_normalize.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include <array>
#include <optional>

namespace ghnlib {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

class TileNormalizeFunction
    : public torch::autograd::Function<TileNormalizeFunction> {
 public:
  static Variable forward(AutogradContext* ctx,
                          const Variable& src,
                          const Variable& shapes,
                          const Variable& offsets,
                          const Variable& scale,
                          const std::optional<Variable>& shift) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto out = tile_normalize(src, shapes, offsets, scale, shift);
    ctx->save_for_backward({src, shapes, offsets, scale});
    ctx->saved_data["has_shift"] = shift.has_value() && shift->defined();
    return out;
  }

  static variable_list backward(AutogradContext* ctx,
                                variable_list grad_outs) {
    const auto saved = ctx->get_saved_variables();
    const bool has_shift = ctx->saved_data["has_shift"].toBool();
    // needs_input_grad counts tensor inputs only: src, shapes, offsets,
    // scale, then shift where one was given.
    const std::array<bool, 3> output_mask = {
        ctx->needs_input_grad(0), ctx->needs_input_grad(3),
        has_shift && ctx->needs_input_grad(4)};
    auto [grad_src, grad_scale, grad_shift] = tile_normalize_backward(
        grad_outs[0], saved[0], saved[1], saved[2], saved[3], output_mask);
    return {grad_src, Variable(), Variable(), grad_scale, grad_shift};
  }
};

at::Tensor tile_normalize_autograd(const at::Tensor& src,
                                   const at::Tensor& shapes,
                                   const at::Tensor& offsets,
                                   const at::Tensor& scale,
                                   const std::optional<at::Tensor>& shift) {
  return TileNormalizeFunction::apply(src, shapes, offsets, scale, shift);
}

}  // namespace

TORCH_LIBRARY_IMPL(ghnlib, Autograd, m) {
  m.impl("tile_normalize", TORCH_FN(tile_normalize_autograd));
  // No double backward: differentiating through the backward raises
  // instead of silently dropping that gradient.
  m.impl("tile_normalize_backward",
         torch::autograd::autogradNotImplementedFallback());
  // Writing into a given buffer is for inference: no gradient.
  m.impl("tile_normalize.out",
         torch::autograd::autogradNotImplementedFallback());
}

}  // namespace ghnlib
