// ghnlib::gated_gnn_sweep has no backward: training runs the sweep with
// PyTorch ops. Calling the op on tensors that require a gradient works, and
// asking for that gradient raises instead of silently returning none.
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

namespace ghnlib {

TORCH_LIBRARY_IMPL(ghnlib, Autograd, m) {
  m.impl("gated_gnn_sweep",
         torch::autograd::autogradNotImplementedFallback());
}

}  // namespace ghnlib
