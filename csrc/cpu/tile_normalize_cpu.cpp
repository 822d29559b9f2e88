// CPU kernels of ghnlib::tile_normalize and its backward.
#include "../tile_normalize.h"

#include <ATen/ATen.h>
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/util/irange.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <tuple>
#include <vector>

namespace ghnlib {
namespace {

// Source elements per backward work item: a fixed size, so that the partial
// sums of grad_scale and grad_shift (and hence their rounding) do not depend
// on the number of threads.
constexpr int64_t kBackwardChunk = 4096;

// One tensor's index map in at most four dimensions, simplified so that the
// innermost one (slot 3) is as long as possible: a target dimension of size 1
// reads one fixed source index (folded into `base`), and a dimension whose
// target equals the source is merged into the next outer one, since the
// pair maps like a single sliced (offset o * s) or tiled dimension. Unused
// outer slots have size 1. A whole tensor of the source's shape becomes one
// contiguous row.
struct SimplifiedMap {
  std::array<int64_t, 4> target;
  std::array<int64_t, 4> source;
  std::array<int64_t, 4> offset;
  std::array<int64_t, 4> stride;
  int64_t base;
};

SimplifiedMap simplify(const int64_t* target,
                       const std::array<int64_t, 4>& sizes) {
  const std::array<int64_t, 4> stride = {sizes[1] * sizes[2] * sizes[3],
                                         sizes[2] * sizes[3], sizes[3], 1};
  std::array<int64_t, 4> t, s, o, st;
  int count = 0;
  int64_t base = 0;
  for (const auto d : c10::irange(4)) {
    const int64_t offset = first_source_index(sizes[d], target[d], d);
    if (target[d] == 1) {
      base += offset * stride[d];
      continue;
    }
    t[count] = target[d];
    s[count] = sizes[d];
    o[count] = offset;
    st[count] = stride[d];
    ++count;
  }
  for (int i = count - 1; i > 0; --i) {
    const bool identity = t[i] == s[i] && o[i] == 0;
    if (!identity || st[i - 1] != s[i] * st[i]) {
      continue;
    }
    t[i - 1] *= s[i];
    o[i - 1] *= s[i];
    s[i - 1] *= s[i];
    st[i - 1] = st[i];
    for (int q = i; q + 1 < count; ++q) {
      t[q] = t[q + 1];
      s[q] = s[q + 1];
      o[q] = o[q + 1];
      st[q] = st[q + 1];
    }
    --count;
  }
  SimplifiedMap map;
  map.base = base;
  const int padding = 4 - count;
  for (const auto slot : c10::irange(4)) {
    const int i = slot - padding;
    map.target[slot] = i >= 0 ? t[i] : 1;
    map.source[slot] = i >= 0 ? s[i] : 1;
    map.offset[slot] = i >= 0 ? o[i] : 0;
    map.stride[slot] = i >= 0 ? st[i] : 0;
  }
  return map;
}

inline int64_t mapped_index(int64_t j, int64_t source, int64_t target,
                            int64_t offset) {
  return target <= source ? offset + j : j % source;
}

// a * x + b rounded like the reference (x * a rounded to scalar_t, then + b),
// so that results match it bit for bit; setup.py compiles with
// -ffp-contract=off so the two steps are never fused into one multiply-add.
template <typename scalar_t, bool kHasShift>
inline scalar_t scale_shift(at::opmath_type<scalar_t> a, scalar_t x,
                            at::opmath_type<scalar_t> b) {
  using opmath_t = at::opmath_type<scalar_t>;
  const scalar_t scaled = static_cast<scalar_t>(static_cast<opmath_t>(x) * a);
  if constexpr (kHasShift) {
    return static_cast<scalar_t>(static_cast<opmath_t>(scaled) + b);
  } else {
    return scaled;
  }
}

// `length` outputs of one row, reading the source line from index k on. A
// row that tiles the source repeats with period `source`: only the first
// period is computed, the rest is copied from it.
template <typename scalar_t, bool kHasShift>
void fill_row(scalar_t* out, const scalar_t* line, int64_t stride,
              int64_t source, int64_t k, int64_t length,
              at::opmath_type<scalar_t> a, at::opmath_type<scalar_t> b) {
  const int64_t computed = std::min(length, source);
  for (int64_t i = 0; i < computed;) {
    const int64_t segment = std::min(computed - i, source - k);
    if (stride == 1) {
      const scalar_t* in = line + k;
      for (const auto q : c10::irange(segment)) {
        out[i + q] = scale_shift<scalar_t, kHasShift>(a, in[q], b);
      }
    } else {
      const scalar_t* in = line + k * stride;
      for (const auto q : c10::irange(segment)) {
        out[i + q] = scale_shift<scalar_t, kHasShift>(a, in[q * stride], b);
      }
    }
    i += segment;
    k = 0;
  }
  for (int64_t done = computed; done < length;) {
    const int64_t copied = std::min(done, length - done);
    std::copy(out, out + copied, out + done);
    done += copied;
  }
}

// Fills out[begin, end) of the flat output, row by row along each tensor's
// innermost simplified dimension, walking the outer ones like an odometer.
// Where an outer dimension tiles the source, a row repeats the row one
// source period earlier, and is copied from it when this call wrote that
// row (rows before `begin` may belong to another thread).
template <typename scalar_t, bool kHasShift>
void forward_range(const scalar_t* src, const int64_t* shapes,
                   const int64_t* offsets, const scalar_t* scale,
                   const scalar_t* shift, scalar_t* out, int64_t num_tensors,
                   const std::array<int64_t, 4>& sizes, int64_t begin,
                   int64_t end) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t source_numel = sizes[0] * sizes[1] * sizes[2] * sizes[3];
  int64_t n = std::upper_bound(offsets + 1, offsets + num_tensors + 1, begin) -
              (offsets + 1);
  int64_t e = begin;
  while (e < end) {
    const SimplifiedMap map = simplify(shapes + 4 * n, sizes);
    const auto& t = map.target;
    const auto& s = map.source;
    // Output distance between rows one source period apart in each
    // tiled outer dimension.
    std::array<int64_t, 3> period;
    period[2] = s[2] * t[3];
    period[1] = s[1] * t[2] * t[3];
    period[0] = s[0] * t[1] * t[2] * t[3];
    const int64_t tensor_end = std::min(end, offsets[n + 1]);
    const int64_t local = e - offsets[n];
    int64_t position = local % t[3];
    int64_t row = local / t[3];
    std::array<int64_t, 3> j, k;
    for (int d = 2; d >= 0; --d) {
      j[d] = row % t[d];
      row /= t[d];
      k[d] = mapped_index(j[d], s[d], t[d], map.offset[d]);
    }
    const opmath_t a = static_cast<opmath_t>(scale[n]);
    const opmath_t b = kHasShift ? static_cast<opmath_t>(shift[n]) : 0;
    const scalar_t* source = src + n * source_numel + map.base;
    while (e < tensor_end) {
      const int64_t length = std::min(t[3] - position, tensor_end - e);
      int64_t repeat_of = -1;
      for (const auto d : c10::irange(3)) {
        if (t[d] > s[d] && j[d] >= s[d] && e - period[d] >= begin) {
          repeat_of = e - period[d];
          break;
        }
      }
      if (repeat_of >= 0) {
        std::copy(out + repeat_of, out + repeat_of + length, out + e);
      } else {
        fill_row<scalar_t, kHasShift>(
            out + e,
            source + k[0] * map.stride[0] + k[1] * map.stride[1] +
                k[2] * map.stride[2],
            map.stride[3], s[3], mapped_index(position, s[3], t[3],
                                              map.offset[3]),
            length, a, b);
      }
      e += length;
      position = 0;
      // A row cut short by `end` leaves the loop: carrying is only needed
      // after complete rows.
      for (int d = 2; d >= 0; --d) {
        ++j[d];
        if (++k[d] == s[d]) {
          k[d] = 0;
        }
        if (j[d] < t[d]) {
          break;
        }
        j[d] = 0;
        k[d] = mapped_index(0, s[d], t[d], map.offset[d]);
      }
    }
    ++n;
  }
}

at::Tensor& tile_normalize_out_cpu(const at::Tensor& src,
                                   const at::Tensor& shapes,
                                   const at::Tensor& offsets,
                                   const at::Tensor& scale,
                                   const std::optional<at::Tensor>& shift,
                                   at::Tensor& out) {
  const auto layout =
      check_tile_normalize_inputs(src, shapes, offsets, scale, shift);
  check_tile_normalize_out(out, src, layout);
  const bool has_shift = shift.has_value() && shift->defined();
  const auto src_c = src.contiguous();
  const auto scale_c = scale.contiguous();
  const auto shift_c = has_shift ? shift->contiguous() : at::Tensor();
  if (layout.total == 0) {
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, src.scalar_type(), "tile_normalize_cpu", [&] {
        const scalar_t* src_data = src_c.const_data_ptr<scalar_t>();
        const scalar_t* scale_data = scale_c.const_data_ptr<scalar_t>();
        const scalar_t* shift_data =
            has_shift ? shift_c.const_data_ptr<scalar_t>() : nullptr;
        scalar_t* out_data = out.mutable_data_ptr<scalar_t>();
        const int64_t* shapes_data = layout.shapes.const_data_ptr<int64_t>();
        const int64_t* offsets_data = layout.offsets.const_data_ptr<int64_t>();
        at::parallel_for(
            0, layout.total, at::internal::GRAIN_SIZE,
            [&](int64_t begin, int64_t end) {
              if (has_shift) {
                forward_range<scalar_t, true>(
                    src_data, shapes_data, offsets_data, scale_data,
                    shift_data, out_data, layout.num_tensors,
                    layout.source_sizes, begin, end);
              } else {
                forward_range<scalar_t, false>(
                    src_data, shapes_data, offsets_data, scale_data,
                    shift_data, out_data, layout.num_tensors,
                    layout.source_sizes, begin, end);
              }
            });
      });
  return out;
}

// The backward gathers per source element k of tensor n: G[k] = the sum of
// grad_out over the outputs that read k. Then grad_src = a * G, and since
// each output reads exactly one source element, grad_scale[n] =
// sum_k S[k] G[k] and grad_shift[n] = sum_k G[k]. Gathering per source
// element instead of scattering per output keeps the result free of races,
// and fixed work items (each summed in one order, then the items of a tensor
// in item order) make it independent of the thread count.

// The simplified index map of every tensor.
std::vector<SimplifiedMap> simplified_maps(const TileNormalizeLayout& layout) {
  const int64_t* shapes = layout.shapes.const_data_ptr<int64_t>();
  std::vector<SimplifiedMap> maps;
  maps.reserve(layout.num_tensors);
  for (const auto n : c10::irange(layout.num_tensors)) {
    maps.push_back(simplify(shapes + 4 * n, layout.source_sizes));
  }
  return maps;
}

// Whether every source element is read by some output. Where one is not
// (a target slices the source), its gradient is never written by the
// gather, so grad_src must start from zeros.
bool reads_every_source_element(const std::vector<SimplifiedMap>& maps,
                                const std::array<int64_t, 4>& sizes) {
  const int64_t source_numel = sizes[0] * sizes[1] * sizes[2] * sizes[3];
  bool every_source_element_read = true;
  for (const auto& map : maps) {
    const auto& s = map.source;
    every_source_element_read &= s[0] * s[1] * s[2] * s[3] == source_numel;
  }
  return every_source_element_read;
}

// A backward work item: rows [row_begin, row_end) of one tensor's simplified
// source, columns [column_begin, column_end) of each.
struct BackwardItem {
  int64_t tensor;
  int64_t row_begin, row_end;
  int64_t column_begin, column_end;
};

// Work items of about kBackwardChunk source elements: whole rows where rows
// are short, pieces of one row where they are long.
std::vector<BackwardItem> backward_items(
    const std::vector<SimplifiedMap>& maps) {
  std::vector<BackwardItem> items;
  for (const auto n : c10::irange(static_cast<int64_t>(maps.size()))) {
    const auto& s = maps[n].source;
    const int64_t rows = s[0] * s[1] * s[2];
    const int64_t length = s[3];
    if (length >= kBackwardChunk) {
      for (const auto row : c10::irange(rows)) {
        for (int64_t column = 0; column < length; column += kBackwardChunk) {
          items.push_back({n, row, row + 1, column,
                           std::min(length, column + kBackwardChunk)});
        }
      }
    } else {
      const int64_t rows_per_item = kBackwardChunk / length;
      for (int64_t row = 0; row < rows; row += rows_per_item) {
        items.push_back(
            {n, row, std::min(rows, row + rows_per_item), 0, length});
      }
    }
  }
  return items;
}

// One source row of a simplified map: where it starts in the source block
// (`line`), and the output indices of the three outer dimensions that read
// it.
struct SourceRow {
  std::array<ReadersOfSourceIndex, 3> readers;
  int64_t line;
};

SourceRow source_row(const SimplifiedMap& map, int64_t row) {
  SourceRow result;
  int64_t rest = row;
  result.line = 0;
  for (int d = 2; d >= 0; --d) {
    const int64_t k = rest % map.source[d];
    rest /= map.source[d];
    result.readers[d] = readers_of_source_index(k, map.source[d],
                                                map.target[d], map.offset[d]);
    result.line += k * map.stride[d];
  }
  return result;
}

// Whether each source element of the row is read by at most one output:
// one output row reads it, and the innermost dimension slices.
bool read_at_most_once(const SimplifiedMap& map, const SourceRow& row) {
  return map.target[3] <= map.source[3] && row.readers[0].count == 1 &&
         row.readers[1].count == 1 && row.readers[2].count == 1;
}

// What a work item reads and writes of one tensor n.
template <typename scalar_t, typename acc_t>
struct TensorGradients {
  const SimplifiedMap& map;
  const scalar_t* grad;    // grad_out of the tensor's outputs
  const scalar_t* source;  // its source block, from map.base on
  scalar_t* grad_source;   // its grad_src block, from map.base on; or null
  acc_t scale;             // a = scale[n]
};

// Running sums of one work item, added to element by element in source
// order.
template <typename acc_t>
struct PartialSums {
  acc_t scale = 0;  // sum_k S[k] G[k]
  acc_t shift = 0;  // sum_k G[k]
};

// G[k] = a * gradient for source element `index`, and its share of the
// partial sums.
template <typename scalar_t, typename acc_t>
inline void write_source_gradient(const TensorGradients<scalar_t, acc_t>& t,
                                  int64_t index, acc_t gathered,
                                  PartialSums<acc_t>& sums) {
  if (t.grad_source != nullptr) {
    t.grad_source[index] = static_cast<scalar_t>(t.scale * gathered);
  }
  sums.scale += static_cast<acc_t>(t.source[index]) * gathered;
  sums.shift += gathered;
}

// A row read at most once per element: the gradient of each element is the
// one output gradient that reads it (or 0), in one pass, no accumulator.
template <typename scalar_t, typename acc_t>
void backward_row_read_once(const TensorGradients<scalar_t, acc_t>& t,
                            const SourceRow& row, int64_t column_begin,
                            int64_t column_end, PartialSums<acc_t>& sums) {
  const auto& target = t.map.target;
  const auto& readers = row.readers;
  const scalar_t* grad_row =
      t.grad + ((readers[0].first * target[1] + readers[1].first) *
                    target[2] +
                readers[2].first) *
                   target[3];
  const int64_t o = t.map.offset[3];
  for (const auto k : c10::irange(column_begin, column_end)) {
    const acc_t g = (k >= o && k < o + target[3])
                        ? static_cast<acc_t>(grad_row[k - o])
                        : acc_t(0);
    write_source_gradient(t, row.line + k * t.map.stride[3], g, sums);
  }
}

// acc[k - column_begin] += the gradients of the outputs of one output row
// that read source index k of the innermost simplified dimension, for k in
// [column_begin, column_end).
template <typename scalar_t, typename acc_t>
void gather_row(acc_t* acc, const scalar_t* grad_row, int64_t source,
                int64_t target, int64_t offset, int64_t column_begin,
                int64_t column_end) {
  if (target <= source) {
    const int64_t first = std::max(column_begin, offset);
    const int64_t last = std::min(column_end, offset + target);
    for (int64_t k = first; k < last; ++k) {
      acc[k - column_begin] += static_cast<acc_t>(grad_row[k - offset]);
    }
    return;
  }
  for (int64_t repeat = 0; repeat < target; repeat += source) {
    const int64_t last = std::min(column_end, target - repeat);
    for (int64_t k = column_begin; k < last; ++k) {
      acc[k - column_begin] += static_cast<acc_t>(grad_row[repeat + k]);
    }
  }
}

// acc[c] = the sum of the gradients of every output that reads source
// element column_begin + c of the row, output row by output row.
template <typename scalar_t, typename acc_t>
void gather_row_gradients(const TensorGradients<scalar_t, acc_t>& t,
                          const SourceRow& row, int64_t column_begin,
                          int64_t column_end, std::vector<acc_t>& acc) {
  const auto& target = t.map.target;
  const auto& readers = row.readers;
  std::fill(acc.begin(), acc.end(), acc_t(0));
  for (int64_t i0 = 0, j0 = readers[0].first; i0 < readers[0].count;
       ++i0, j0 += readers[0].step) {
    for (int64_t i1 = 0, j1 = readers[1].first; i1 < readers[1].count;
         ++i1, j1 += readers[1].step) {
      for (int64_t i2 = 0, j2 = readers[2].first; i2 < readers[2].count;
           ++i2, j2 += readers[2].step) {
        gather_row(acc.data(),
                   t.grad + ((j0 * target[1] + j1) * target[2] + j2) *
                                target[3],
                   t.map.source[3], target[3], t.map.offset[3], column_begin,
                   column_end);
      }
    }
  }
}

// The gradients of one work item's source elements, and its partial sums.
template <typename scalar_t, typename acc_t>
PartialSums<acc_t> backward_item(const TensorGradients<scalar_t, acc_t>& t,
                                 const BackwardItem& item,
                                 std::vector<acc_t>& acc) {
  const int64_t width = item.column_end - item.column_begin;
  acc.resize(width);
  PartialSums<acc_t> sums;
  for (const auto r : c10::irange(item.row_begin, item.row_end)) {
    const SourceRow row = source_row(t.map, r);
    if (read_at_most_once(t.map, row)) {
      backward_row_read_once(t, row, item.column_begin, item.column_end,
                             sums);
      continue;
    }
    gather_row_gradients(t, row, item.column_begin, item.column_end, acc);
    for (const auto c : c10::irange(width)) {
      write_source_gradient(
          t, row.line + (item.column_begin + c) * t.map.stride[3], acc[c],
          sums);
    }
  }
  return sums;
}

// grad_scale[n] and grad_shift[n]: the partial sums of tensor n's items, in
// item order (each pointer null where that gradient is not wanted).
template <typename scalar_t, typename acc_t>
void sum_partials_per_tensor(const std::vector<BackwardItem>& items,
                             const std::vector<PartialSums<acc_t>>& partials,
                             int64_t num_tensors, scalar_t* grad_scale,
                             scalar_t* grad_shift) {
  std::vector<acc_t> sum_scale(num_tensors, 0), sum_shift(num_tensors, 0);
  for (const auto i : c10::irange(static_cast<int64_t>(items.size()))) {
    sum_scale[items[i].tensor] += partials[i].scale;
    sum_shift[items[i].tensor] += partials[i].shift;
  }
  for (const auto n : c10::irange(num_tensors)) {
    if (grad_scale != nullptr) {
      grad_scale[n] = static_cast<scalar_t>(sum_scale[n]);
    }
    if (grad_shift != nullptr) {
      grad_shift[n] = static_cast<scalar_t>(sum_shift[n]);
    }
  }
}

// The backward for one dtype: every work item in parallel, then the sums
// of each tensor's items.
template <typename scalar_t>
void backward_kernel(const at::Tensor& grad_out, const at::Tensor& src,
                     const at::Tensor& scale,
                     const TileNormalizeLayout& layout,
                     const std::vector<SimplifiedMap>& maps,
                     const std::vector<BackwardItem>& items,
                     at::Tensor& grad_src, at::Tensor& grad_scale,
                     at::Tensor& grad_shift) {
  using acc_t = at::acc_type<scalar_t, /*is_cuda=*/false>;
  const auto& sizes = layout.source_sizes;
  const int64_t source_numel = sizes[0] * sizes[1] * sizes[2] * sizes[3];
  const scalar_t* grad_data = grad_out.const_data_ptr<scalar_t>();
  const scalar_t* src_data = src.const_data_ptr<scalar_t>();
  const scalar_t* scale_data = scale.const_data_ptr<scalar_t>();
  scalar_t* grad_src_data =
      grad_src.defined() ? grad_src.mutable_data_ptr<scalar_t>() : nullptr;
  const int64_t* offsets = layout.offsets.const_data_ptr<int64_t>();
  const bool need_sums = grad_scale.defined() || grad_shift.defined();
  const int64_t num_items = static_cast<int64_t>(items.size());
  std::vector<PartialSums<acc_t>> partials(need_sums ? num_items : 0);

  at::parallel_for(0, num_items, 1, [&](int64_t first, int64_t last) {
    std::vector<acc_t> acc;
    for (const auto i : c10::irange(first, last)) {
      const int64_t n = items[i].tensor;
      const int64_t block = n * source_numel + maps[n].base;
      const TensorGradients<scalar_t, acc_t> tensor = {
          maps[n], grad_data + offsets[n], src_data + block,
          grad_src_data != nullptr ? grad_src_data + block : nullptr,
          static_cast<acc_t>(scale_data[n])};
      const auto sums = backward_item(tensor, items[i], acc);
      if (need_sums) {
        partials[i] = sums;
      }
    }
  });

  if (need_sums) {
    sum_partials_per_tensor<scalar_t, acc_t>(
        items, partials, layout.num_tensors,
        grad_scale.defined() ? grad_scale.mutable_data_ptr<scalar_t>()
                             : nullptr,
        grad_shift.defined() ? grad_shift.mutable_data_ptr<scalar_t>()
                             : nullptr);
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> tile_normalize_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& src,
    const at::Tensor& shapes, const at::Tensor& offsets,
    const at::Tensor& scale, std::array<bool, 3> output_mask) {
  const auto layout =
      check_tile_normalize_inputs(src, shapes, offsets, scale, std::nullopt);
  check_tile_normalize_grad(grad_out, src, layout);
  const auto [need_src, need_scale, need_shift] = output_mask;
  if (!need_src && !need_scale && !need_shift) {
    return {at::Tensor(), at::Tensor(), at::Tensor()};
  }
  const auto grad_c = grad_out.contiguous();
  const auto src_c = src.contiguous();
  const auto scale_c = scale.contiguous();
  const auto maps = simplified_maps(layout);
  const auto items = backward_items(maps);
  at::Tensor grad_src;
  if (need_src) {
    grad_src = reads_every_source_element(maps, layout.source_sizes)
                   ? at::empty_like(src_c)
                   : at::zeros_like(src_c);
  }
  at::Tensor grad_scale = need_scale ? at::empty_like(scale_c) : at::Tensor();
  at::Tensor grad_shift = need_shift ? at::empty_like(scale_c) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, src.scalar_type(),
      "tile_normalize_backward_cpu", [&] {
        backward_kernel<scalar_t>(grad_c, src_c, scale_c, layout, maps, items,
                                  grad_src, grad_scale, grad_shift);
      });
  return {grad_src, grad_scale, grad_shift};
}

}  // namespace

TORCH_LIBRARY_IMPL(ghnlib, CPU, m) {
  m.impl("tile_normalize.out", TORCH_FN(tile_normalize_out_cpu));
  m.impl("tile_normalize_backward", TORCH_FN(tile_normalize_backward_cpu));
}

}  // namespace ghnlib
