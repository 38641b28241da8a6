// The CUDA backend's data movement (engine/cuda/layout_kernels.cuh: the tiled transpose, the general
// permute gather, copy_axis) on the CPU emulator of CUDA's thread model against the CPU backend: every
// permutation of rank 2, 3 and 4 over shapes with size-1 axes and partial transpose tiles, in each
// element size, bit for bit.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "tests/cuda/emulated.h"

#include "engine/cuda/layout_kernels.cuh"

using namespace lasgrad;
using namespace lasgrad::emulated;

namespace {

const simt::Launch kLaunch{nullptr, 0};  // no dynamic shared memory

// Distinct values (the position), so that any misplaced element shows.
Tensor iota(const Shape& shape, DType dt) {
  std::vector<double> v(static_cast<size_t>(numel_of(shape)));
  std::iota(v.begin(), v.end(), 1.0);
  if (dt == DType::I32) return Tensor::from(std::vector<int32_t>(v.begin(), v.end()), shape);
  return Tensor::from(v, shape, dt);
}

}  // namespace

TEST_CASE("emulated cuda permute equals the CPU's: every permutation of rank 2 to 4, transposes with partial tiles") {
  const std::vector<Shape> shapes = {{33, 70},     {1, 40},      {3, 33, 70}, {2, 1, 5},
                                     {4, 3, 1, 5}, {2, 3, 4, 5}, {40, 2, 35}};
  int transposes = 0;
  for (DType dt : {DType::F32, DType::F64, DType::I32})
    for (const Shape& shape : shapes) {
      std::vector<int> perm(shape.size());
      std::iota(perm.begin(), perm.end(), 0);
      const Tensor x = iota(shape, dt);
      do {
        Shape out_shape;
        for (int p : perm) out_shape.push_back(shape[static_cast<size_t>(p)]);
        Tensor got = Tensor::full(out_shape, -1, dt), want = Tensor::zeros(out_shape, dt);  // -1: never a value
        cuda::layout::permute(x, perm, got, kLaunch);
        cpu_backend().permute(x, perm, want);
        std::string p;
        for (int i : perm) p += std::to_string(i);
        INFO(shape_str(shape) << " perm " << p << " " << std::string(dtype_name(dt)));
        CHECK(got.to_doubles() == want.to_doubles());
        const PermutePlan plan = plan_permute(shape, perm);
        transposes += (plan.groups() == 2 && plan.xorder[0] == 1) ||
                      (plan.groups() == 3 && plan.xorder[0] == 0 && plan.xorder[1] == 2);
      } while (std::next_permutation(perm.begin(), perm.end()));
    }
  CHECK(transposes > 0);  // the tiled transpose kernel was among the paths taken
}

TEST_CASE("emulated cuda copy_axis equals the CPU's: slices into concatenations along every axis") {
  for (DType dt : {DType::F32, DType::F64, DType::I32}) {
    const Shape src_shape{3, 5, 4};
    const Tensor src = iota(src_shape, dt);
    for (int axis = 0; axis < 3; ++axis) {
      Shape dst_shape = src_shape;
      dst_shape[static_cast<size_t>(axis)] += 3;
      const int64_t len = src_shape[static_cast<size_t>(axis)] - 1;
      Tensor got = Tensor::zeros(dst_shape, dt), want = Tensor::zeros(dst_shape, dt);
      cuda::layout::copy_axis(src, 1, got, 2, axis, len, kLaunch);
      cpu_backend().copy_axis(src, 1, want, 2, axis, len);
      INFO("axis " << axis << " " << std::string(dtype_name(dt)));
      CHECK(got.to_doubles() == want.to_doubles());
    }
  }
}
