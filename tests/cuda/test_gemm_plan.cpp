// The CUDA backend's matmul arguments (engine/cuda/gemm_plan.h) on the host: run through a literal
// column-major strided-batched GEMM written from cuBLAS's definition, they must give the CPU backend's
// row-major product for every transpose pair and shape, and satisfy cuBLAS's argument checks.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/gemm_plan.h"
#include "tests/cuda/emulated.h"

using namespace lasgrad;
using namespace lasgrad::emulated;

TEST_CASE("cuBLAS arguments of matmul: the column-major GEMM they describe is the CPU's row-major product") {
  Rng rng(31);
  for (int64_t batch : {1, 3})
    for (int64_t M : {1, 5, 16})
      for (int64_t N : {1, 7, 16})
        for (int64_t K : {1, 6, 16})
          for (bool ta : {false, true})
            for (bool tb : {false, true}) {
              const Tensor a = random(ta ? Shape{batch, K, M} : Shape{batch, M, K}, rng, DType::F64);
              const Tensor b = random(tb ? Shape{batch, N, K} : Shape{batch, K, N}, rng, DType::F64);
              Tensor want = unwritten({batch, M, N}, DType::F64), got = unwritten({batch, M, N}, DType::F64);
              cpu_backend().matmul(a, ta, b, tb, want);
              const cuda::GemmPlan p = cuda::gemm_plan(batch, M, N, K, ta, tb);
              const std::string what = "batch " + std::to_string(batch) + " M " + std::to_string(M) + " N " +
                                       std::to_string(N) + " K " + std::to_string(K) + (ta ? " a^T" : "") +
                                       (tb ? " b^T" : "");
              INFO(what);
              // cuBLAS refuses (CUBLAS_STATUS_INVALID_VALUE) leading dimensions below these.
              CHECK(p.ld_first >= std::max(1, p.trans_first ? p.k : p.m));
              CHECK(p.ld_second >= std::max(1, p.trans_second ? p.n : p.k));
              CHECK(p.ldc >= std::max(1, p.m));
              column_major_gemm(p, b.data<double>(), a.data<double>(), got.data<double>());
              expect_close(got, want, 1e-12, what);
            }
}

TEST_CASE("cuBLAS arguments of matmul: a size beyond int is refused, naming the op") {
  CHECK_THROWS_WITH_AS(cuda::gemm_plan(1, int64_t{1} << 31, 4, 4, false, false),
                       doctest::Contains("matmul: the cuda backend's cuBLAS calls take int sizes"), Error);
}
