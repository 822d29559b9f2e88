// ghnlib::tile_normalize: the op schemas, their entry points, the input
// checks every kernel runs, and what is the same on every backend (the
// allocating forward, the views of the flat output). The autograd kernel
// lives in autograd/, the CPU and CUDA kernels in cpu/ and cuda/.
#include "tile_normalize.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/util/irange.h>
#include <torch/library.h>

#include <sstream>
#include <string>
#include <vector>

namespace ghnlib {
namespace {

bool is_supported_dtype(at::ScalarType dtype) {
  return dtype == at::kFloat || dtype == at::kDouble || dtype == at::kHalf ||
         dtype == at::kBFloat16;
}

std::string shape_string(const at::Tensor& tensor) {
  std::ostringstream out;
  out << tensor.sizes();
  return out.str();
}

void check_like_src(const at::Tensor& tensor, const char* name,
                    const at::Tensor& src, int64_t num_tensors) {
  TORCH_CHECK_VALUE(
      tensor.dim() == 1 && tensor.size(0) == num_tensors,
      "ghnlib::tile_normalize: ", name, " must have shape [N] = [",
      num_tensors, "] (one value per source tensor), got ",
      shape_string(tensor), ".");
  TORCH_CHECK_VALUE(
      tensor.scalar_type() == src.scalar_type(), "ghnlib::tile_normalize: ",
      name, " must have the dtype of src (", src.scalar_type(), "), got ",
      tensor.scalar_type(), "; cast it with ", name, ".to(src.dtype).");
  TORCH_CHECK_VALUE(
      tensor.device() == src.device(), "ghnlib::tile_normalize: ", name,
      " must be on the device of src (", src.device(), "), got ",
      tensor.device(), "; move it with ", name, ".to(src.device).");
}

at::Tensor host_index_tensor(const at::Tensor& tensor, const char* name,
                             const at::Tensor& src) {
  TORCH_CHECK_VALUE(
      tensor.scalar_type() == at::kLong, "ghnlib::tile_normalize: ", name,
      " must be an int64 tensor, got ", tensor.scalar_type(),
      "; build it with dtype=torch.long.");
  TORCH_CHECK_VALUE(
      tensor.is_cpu() || tensor.device() == src.device(),
      "ghnlib::tile_normalize: ", name,
      " must be on the CPU (preferred: no device synchronisation) or on the "
      "device of src (",
      src.device(), "), got ", tensor.device(), ".");
  return tensor.to(at::kCPU).contiguous();
}

// The target shapes (host, int64 [N, 4]) are positive and the offsets
// (host, int64 [N + 1]) their running sum from 0: the kernels locate each
// tensor's outputs by the offsets and index within them by the shapes.
void check_offsets_follow_shapes(const at::Tensor& shapes,
                                 const at::Tensor& offsets,
                                 int64_t num_tensors) {
  const int64_t* target = shapes.const_data_ptr<int64_t>();
  const int64_t* start = offsets.const_data_ptr<int64_t>();
  TORCH_CHECK_VALUE(start[0] == 0,
                    "ghnlib::tile_normalize: offsets[0] must be 0, got ",
                    start[0], ".");
  for (const auto n : c10::irange(num_tensors)) {
    int64_t numel = 1;
    for (const auto d : c10::irange(4)) {
      TORCH_CHECK_VALUE(
          target[4 * n + d] >= 1, "ghnlib::tile_normalize: shapes[", n,
          "] = (", target[4 * n], ", ", target[4 * n + 1], ", ",
          target[4 * n + 2], ", ", target[4 * n + 3],
          ") must be four positive sizes; pad lower-rank targets with 1s.");
      numel *= target[4 * n + d];
    }
    TORCH_CHECK_VALUE(
        start[n + 1] - start[n] == numel, "ghnlib::tile_normalize: offsets[",
        n + 1, "] - offsets[", n, "] must be the size of shapes[", n, "] (",
        numel, "), got ", start[n + 1] - start[n],
        "; offsets must be the running sum of the target sizes, starting at "
        "0.");
  }
}

}  // namespace

TileNormalizeLayout check_tile_normalize_inputs(
    const at::Tensor& src,
    const at::Tensor& shapes,
    const at::Tensor& offsets,
    const at::Tensor& scale,
    const std::optional<at::Tensor>& shift) {
  TORCH_CHECK_VALUE(
      src.dim() == 5,
      "ghnlib::tile_normalize: src must have shape [N, s0, s1, s2, s3], got ",
      shape_string(src), "; view lower-rank sources with size-1 dimensions.");
  TORCH_CHECK_VALUE(
      is_supported_dtype(src.scalar_type()),
      "ghnlib::tile_normalize: src must be float32, float64, float16 or "
      "bfloat16, got ",
      src.scalar_type(), "; convert it with src.float().");
  TileNormalizeLayout layout;
  layout.num_tensors = src.size(0);
  for (const auto d : c10::irange(4)) {
    layout.source_sizes[d] = src.size(d + 1);
    TORCH_CHECK_VALUE(
        layout.source_sizes[d] >= 1, "ghnlib::tile_normalize: src has shape ",
        shape_string(src),
        ", but every source size s0..s3 must be at least 1 to be sliced or "
        "tiled; drop the empty sources.");
  }
  const int64_t num_tensors = layout.num_tensors;
  check_like_src(scale, "scale", src, num_tensors);
  if (shift.has_value() && shift->defined()) {
    check_like_src(*shift, "shift", src, num_tensors);
  }

  layout.shapes = host_index_tensor(shapes, "shapes", src);
  TORCH_CHECK_VALUE(
      layout.shapes.dim() == 2 && layout.shapes.size(0) == num_tensors &&
          layout.shapes.size(1) == 4,
      "ghnlib::tile_normalize: shapes must have shape [N, 4] = [", num_tensors,
      ", 4] (four target sizes per source tensor, padded with 1s), got ",
      shape_string(shapes), ".");
  layout.offsets = host_index_tensor(offsets, "offsets", src);
  TORCH_CHECK_VALUE(
      layout.offsets.dim() == 1 && layout.offsets.size(0) == num_tensors + 1,
      "ghnlib::tile_normalize: offsets must have shape [N + 1] = [",
      num_tensors + 1, "] (where each result starts in the flat output, then "
      "the total), got ",
      shape_string(offsets), ".");

  check_offsets_follow_shapes(layout.shapes, layout.offsets, num_tensors);
  layout.total = layout.offsets.const_data_ptr<int64_t>()[num_tensors];
  return layout;
}

void check_tile_normalize_out(const at::Tensor& out, const at::Tensor& src,
                              const TileNormalizeLayout& layout) {
  TORCH_CHECK_VALUE(
      out.dim() == 1 && out.size(0) == layout.total && out.is_contiguous(),
      "ghnlib::tile_normalize.out: out must be a contiguous 1-D tensor of "
      "offsets[N] = ",
      layout.total, " elements, got ", shape_string(out),
      (out.is_contiguous() ? "" : " (not contiguous)"), ".");
  TORCH_CHECK_VALUE(out.scalar_type() == src.scalar_type() &&
                        out.device() == src.device(),
                    "ghnlib::tile_normalize.out: out must be a ",
                    src.scalar_type(), " tensor on ", src.device(),
                    " like src, got ", out.scalar_type(), " on ",
                    out.device(), ".");
}

void check_tile_normalize_grad(const at::Tensor& grad_out,
                               const at::Tensor& src,
                               const TileNormalizeLayout& layout) {
  TORCH_CHECK_VALUE(
      grad_out.dim() == 1 && grad_out.size(0) == layout.total,
      "ghnlib::tile_normalize_backward: grad_out must have the shape of the "
      "flat output [offsets[N]] = [",
      layout.total, "], got ", shape_string(grad_out), ".");
  TORCH_CHECK_VALUE(grad_out.scalar_type() == src.scalar_type(),
                    "ghnlib::tile_normalize_backward: grad_out must have the "
                    "dtype of src (",
                    src.scalar_type(), "), got ", grad_out.scalar_type(), ".");
  TORCH_CHECK_VALUE(grad_out.device() == src.device(),
                    "ghnlib::tile_normalize_backward: grad_out must be on the "
                    "device of src (",
                    src.device(), "), got ", grad_out.device(), ".");
}

at::Tensor tile_normalize(const at::Tensor& src,
                          const at::Tensor& shapes,
                          const at::Tensor& offsets,
                          const at::Tensor& scale,
                          const std::optional<at::Tensor>& shift) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("ghnlib::tile_normalize", "")
                       .typed<decltype(tile_normalize)>();
  return op.call(src, shapes, offsets, scale, shift);
}

at::Tensor& tile_normalize_out(const at::Tensor& src,
                               const at::Tensor& shapes,
                               const at::Tensor& offsets,
                               const at::Tensor& scale,
                               const std::optional<at::Tensor>& shift,
                               at::Tensor& out) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("ghnlib::tile_normalize", "out")
                       .typed<decltype(tile_normalize_out)>();
  return op.call(src, shapes, offsets, scale, shift, out);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> tile_normalize_backward(
    const at::Tensor& grad_out,
    const at::Tensor& src,
    const at::Tensor& shapes,
    const at::Tensor& offsets,
    const at::Tensor& scale,
    std::array<bool, 3> output_mask) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("ghnlib::tile_normalize_backward", "")
          .typed<decltype(tile_normalize_backward)>();
  return op.call(grad_out, src, shapes, offsets, scale, output_mask);
}

namespace {

// tile_normalize for every backend: allocates the flat output and runs the
// backend's tile_normalize.out kernel, so that each backend implements the
// forward once.
at::Tensor tile_normalize_allocating(const at::Tensor& src,
                                     const at::Tensor& shapes,
                                     const at::Tensor& offsets,
                                     const at::Tensor& scale,
                                     const std::optional<at::Tensor>& shift) {
  const auto layout =
      check_tile_normalize_inputs(src, shapes, offsets, scale, shift);
  auto out = at::empty({layout.total}, src.options());
  // The layout goes on as host tensors: checking it again costs no device
  // synchronisation.
  return tile_normalize_out(src, layout.shapes, layout.offsets, scale, shift,
                            out);
}

// The results of tile_normalize as views of the flat output. One split
// (whose backward concatenates once) rather than one slice per tensor
// (each of whose backward would allocate the whole flat gradient); written
// here since N views cost far less in C++ than from Python.
std::vector<at::Tensor> unflatten_views(const at::Tensor& flat,
                                        const at::Tensor& shapes) {
  TORCH_CHECK_VALUE(
      shapes.scalar_type() == at::kLong && shapes.dim() == 2 &&
          shapes.size(1) == 4,
      "ghnlib::unflatten_views: shapes must be an int64 tensor [N, 4], got ",
      shapes.scalar_type(), " ", shape_string(shapes), ".");
  TORCH_CHECK_VALUE(flat.dim() == 1,
                    "ghnlib::unflatten_views: flat must be 1-D, got ",
                    shape_string(flat), ".");
  const auto host_shapes = shapes.to(at::kCPU).contiguous();
  const int64_t* target = host_shapes.const_data_ptr<int64_t>();
  const int64_t num_tensors = host_shapes.size(0);
  std::vector<int64_t> sizes(num_tensors);
  int64_t total = 0;
  for (const auto n : c10::irange(num_tensors)) {
    sizes[n] = target[4 * n] * target[4 * n + 1] * target[4 * n + 2] *
               target[4 * n + 3];
    total += sizes[n];
  }
  TORCH_CHECK_VALUE(total == flat.size(0),
                    "ghnlib::unflatten_views: the shapes hold ", total,
                    " elements, but flat has ", flat.size(0), ".");
  auto pieces = at::split_with_sizes(flat, sizes);
  for (const auto n : c10::irange(num_tensors)) {
    pieces[n] = pieces[n].view(at::IntArrayRef(target + 4 * n, 4));
  }
  return pieces;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(ghnlib, m) {
  m.def(
      "tile_normalize(Tensor src, Tensor shapes, Tensor offsets, Tensor scale, "
      "Tensor? shift=None) -> Tensor");
  m.def(
      "tile_normalize.out(Tensor src, Tensor shapes, Tensor offsets, "
      "Tensor scale, Tensor? shift=None, *, Tensor(a!) out) -> Tensor(a!)");
  m.def(
      "tile_normalize_backward(Tensor grad_out, Tensor src, Tensor shapes, "
      "Tensor offsets, Tensor scale, bool[3] output_mask) -> "
      "(Tensor grad_src, Tensor grad_scale, Tensor grad_shift)");
  m.def("unflatten_views(Tensor(a -> *) flat, Tensor shapes) -> Tensor(a)[]");
}

TORCH_LIBRARY_IMPL(ghnlib, CompositeImplicitAutograd, m) {
  m.impl("unflatten_views", TORCH_FN(unflatten_views));
}

TORCH_LIBRARY_IMPL(ghnlib, CompositeExplicitAutograd, m) {
  m.impl("tile_normalize", TORCH_FN(tile_normalize_allocating));
}

}  // namespace ghnlib
