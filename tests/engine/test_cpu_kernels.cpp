// The CPU backend's kernels called directly, each against a plain loop written here in double, over
// awkward shapes (size-1 axes, odd sizes, broadcasts on every axis, batches with every transpose flag)
// in float32 and float64, plus the determinism promises (thread count does not change a result).
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/ops.h"
#include "engine/profile.h"
#include "engine/rng.h"

using namespace lasgrad;

namespace {

Backend& cpu() { return cpu_backend(); }

const double kInf = std::numeric_limits<double>::infinity();

std::vector<double> uniform(int64_t n, Rng& rng, double lo = -2, double hi = 2) {
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = rng.uniform(lo, hi);
  return v;
}

Tensor tensor(const std::vector<double>& v, const Shape& s, DType dt) { return Tensor::from(v, s, dt); }

// Float32 kernels are checked to ~1e-5 relative, float64 ones to ~1e-12.
double tol(DType dt, double f32 = 2e-5, double f64 = 1e-12) { return dt == DType::F32 ? f32 : f64; }

void check_close(const Tensor& got, const std::vector<double>& want, double t) {
  std::vector<double> g = got.to_doubles();
  REQUIRE(g.size() == want.size());
  int bad = 0;
  for (size_t i = 0; i < g.size() && bad < 5; ++i) {
    bool same_inf = std::isinf(want[i]) && g[i] == want[i];
    if (!same_inf && !(std::abs(g[i] - want[i]) <= t * (1 + std::abs(want[i])))) {
      ++bad;
      FAIL_CHECK("entry " << i << ": got " << g[i] << ", want " << want[i]);
    }
  }
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// Runs f with the OpenMP thread count set to n, then restores it.
void with_threads(int n, const std::function<void()>& f) {
  int before = omp_get_max_threads();
  omp_set_num_threads(n);
  f();
  omp_set_num_threads(before);
}

std::vector<int64_t> unravel(int64_t i, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (size_t k = s.size(); k-- > 0;) idx[k] = i % s[k], i /= s[k];
  return idx;
}

// Flat index of idx in shape s, where an axis of size 1 in s broadcasts (reads index 0).
int64_t ravel_bcast(const std::vector<int64_t>& idx, const Shape& s) {
  int64_t off = 0;
  for (size_t k = 0; k < s.size(); ++k) off = off * s[k] + (s[k] == 1 ? 0 : idx[k]);
  return off;
}

const DType kFloats[] = {DType::F32, DType::F64};

}  // namespace

TEST_CASE("allocator: 64-byte alignment, reuse of a freed block of the same bucket, thread safety") {
  CachingAllocator a;
  for (size_t n : {1, 63, 64, 65, 1000, 4097, 1 << 20, 17 << 20}) {
    void* p = a.allocate(n);
    CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
    size_t b = CachingAllocator::bucket_size(n);
    CHECK(b >= n);
    CHECK(b <= n + n / 8 + 64);
    std::memset(p, 1, n);  // the whole request is usable
    a.deallocate(p, n);
  }
  void* p = a.allocate(100000);
  a.deallocate(p, 100000);
  auto before = a.stats();
  void* q = a.allocate(99999);  // same bucket: the cached block comes back
  CHECK(q == p);
  CHECK(a.stats().hits == before.hits + 1);
  a.deallocate(q, 99999);
  a.release_cached();
  CHECK(a.stats().cached_bytes == 0);

  a.set_cache_limit(0);  // nothing may be cached beyond the limit
  void* r = a.allocate(5000);
  a.deallocate(r, 5000);
  CHECK(a.stats().cached_bytes == 0);
  a.set_cache_limit(size_t{1} << 30);

#pragma omp parallel for num_threads(2)
  for (int i = 0; i < 2000; ++i) {
    size_t n = 64 + 64 * static_cast<size_t>(i % 7);
    void* m = a.allocate(n);
    std::memset(m, i & 0xff, n);
    a.deallocate(m, n);
  }
  CHECK(a.stats().hits + a.stats().misses >= 2000);
}

TEST_CASE("allocator: a training-step pattern of tensor sizes is served from the cache after step one") {
  CachingAllocator& alloc = static_cast<CpuBackend&>(cpu_backend()).allocator();
  auto step = [] {
    Tensor a = Tensor::empty({512, 384}), b = Tensor::empty({512, 1536}), c = Tensor::empty({7, 3}, DType::F64);
  };
  step();
  auto before = alloc.stats();
  step();
  CHECK(alloc.stats().misses == before.misses);
  CHECK(alloc.stats().hits == before.hits + 3);
}

TEST_CASE("fill and convert, every dtype") {
  Tensor i = Tensor::empty({5}, DType::I32);
  cpu().fill(i, 7.9);
  CHECK(i.to_doubles() == std::vector<double>(5, 7.0));
  Tensor big = Tensor::empty({100001}, DType::F64);
  cpu().fill(big, -1.5);
  CHECK(big.to_doubles() == std::vector<double>(100001, -1.5));

  std::vector<double> v = {1.5, -2.25, 3.0, 0.0, -7.75};
  for (DType from : {DType::F32, DType::F64})
    for (DType to : {DType::F32, DType::F64, DType::I32}) {
      Tensor x = tensor(v, {5}, from), out = Tensor::empty({5}, to);
      cpu().convert(x, out);
      std::vector<double> want = v;
      if (to == DType::I32) want = {1, -2, 3, 0, -7};  // truncation toward zero
      CHECK(out.to_doubles() == want);
    }
  Tensor ints = Tensor::from(std::vector<int32_t>{-3, 0, 2147483647}, {3});
  Tensor d = Tensor::empty({3}, DType::F64);
  cpu().convert(ints, d);
  CHECK(d.to_doubles() == std::vector<double>{-3, 0, 2147483647.0});
}

TEST_CASE("bfloat16: conversion rounds to nearest even, keeps signs, infinities and NaN, and fill rounds the same") {
  const float inf = std::numeric_limits<float>::infinity();
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: to 1 (even); 1 + 3 2^-8 halfway between 1 + 2^-7 and
  // 1 + 2^-6: to 1 + 2^-6 (even); 1 + 2^-8 + 2^-20 is past halfway: up; 3.4e38 rounds past the largest
  // bfloat16 (3.3895e38) to infinity; 2^-133 is a float denormal that stays one.
  const std::vector<float> x = {1.0f, 1.00390625f, 1.01171875f, 1.00390720f, -2.5f, -0.0f,
                                inf,  -inf,        3.4e38f,     0x1p-133f,   NAN};
  const std::vector<uint16_t> want = {0x3f80, 0x3f80, 0x3f82, 0x3f81, 0xc020, 0x8000,
                                      0x7f80, 0xff80, 0x7f80, 0x0001, 0x7fc0};
  Tensor t = Tensor::from(x, {static_cast<int64_t>(x.size())}).to(DType::BF16);
  REQUIRE(t.dtype() == DType::BF16);
  REQUIRE(t.nbytes() == 2 * x.size());
  std::vector<uint16_t> bits(x.size());
  std::memcpy(bits.data(), t.raw(), t.nbytes());
  CHECK(bits == want);
  const std::vector<double> back = t.to_doubles();
  CHECK(back[2] == 1.015625);
  CHECK(std::isnan(back.back()));
  // From float64 through float32, as PyTorch's conversion; to int32 by truncation.
  Tensor d = Tensor::from(std::vector<double>{-7.75, 300.5}, {2}).to(DType::BF16);
  CHECK(d.to_doubles() == std::vector<double>{-7.75, 300.0});  // 300.5 needs 10 mantissa bits
  CHECK(d.to(DType::I32).to_doubles() == std::vector<double>{-7, 300});
  Tensor f = Tensor::empty({3}, DType::BF16);
  cpu().fill(f, 1.00390720);
  CHECK(f.to_doubles() == std::vector<double>(3, 1.0078125));
}

TEST_CASE("unary ops against std:: in double") {
  const double c = std::sqrt(2 / M_PI);
  struct Case {
    UnaryOp op;
    double lo, hi, s;
    std::function<double(double)> f;
  };
  const double s = 1.75;
  std::vector<Case> cases = {
      {UnaryOp::Neg, -3, 3, 0, [](double x) { return -x; }},
      {UnaryOp::Exp, -20, 20, 0, [](double x) { return std::exp(x); }},
      {UnaryOp::Log, 1e-3, 50, 0, [](double x) { return std::log(x); }},
      {UnaryOp::Sqrt, 0, 50, 0, [](double x) { return std::sqrt(x); }},
      {UnaryOp::Tanh, -10, 10, 0, [](double x) { return std::tanh(x); }},
      {UnaryOp::Relu, -3, 3, 0, [](double x) { return x > 0 ? x : 0; }},
      {UnaryOp::GeluErf, -6, 6, 0, [](double x) { return x * 0.5 * (1 + std::erf(x / std::sqrt(2.0))); }},
      {UnaryOp::GeluTanh, -6, 6, 0,
       [c](double x) { return 0.5 * x * (1 + std::tanh(c * (x + 0.044715 * x * x * x))); }},
      {UnaryOp::AddScalar, -3, 3, s, [s](double x) { return x + s; }},
      {UnaryOp::MulScalar, -3, 3, s, [s](double x) { return x * s; }},
      {UnaryOp::RsubScalar, -3, 3, s, [s](double x) { return s - x; }},
      {UnaryOp::RdivScalar, 0.25, 3, s, [s](double x) { return s / x; }},
  };
  Rng rng(1);
  for (DType dt : kFloats)
    for (const Case& k : cases)
      for (int64_t n : {1, 37, 100003}) {  // the largest one runs on several threads
        CAPTURE(static_cast<int>(k.op));
        CAPTURE(n);
        CAPTURE(dtype_name(dt));
        std::vector<double> v = uniform(n, rng, k.lo, k.hi);
        Tensor x = tensor(v, {n}, dt), y = Tensor::empty({n}, dt);
        std::vector<double> xs = x.to_doubles(), want(v.size());
        for (size_t i = 0; i < v.size(); ++i) want[i] = k.f(xs[i]);
        cpu().unary(k.op, x, k.s, y);
        check_close(y, want, tol(dt, 1e-5, 1e-13));
        cpu().unary(k.op, x, k.s, x);  // in place
        check_close(x, want, tol(dt, 1e-5, 1e-13));
      }
}

TEST_CASE("unary_grad against central differences of the double forward") {
  const double c = std::sqrt(2 / M_PI);
  std::vector<std::pair<UnaryOp, std::function<double(double)>>> cases = {
      {UnaryOp::Tanh, [](double x) { return std::tanh(x); }},
      {UnaryOp::Relu, [](double x) { return x > 0 ? x : 0; }},
      {UnaryOp::GeluErf, [](double x) { return x * 0.5 * (1 + std::erf(x / std::sqrt(2.0))); }},
      {UnaryOp::GeluTanh, [c](double x) { return 0.5 * x * (1 + std::tanh(c * (x + 0.044715 * x * x * x))); }},
  };
  Rng rng(2);
  for (DType dt : kFloats)
    for (auto& [op, f] : cases)
      for (int64_t n : {3, 1029, 70001}) {
        CAPTURE(static_cast<int>(op));
        std::vector<double> xv = uniform(n, rng, -5, 5), dyv = uniform(n, rng);
        for (double& x : xv)
          if (std::abs(x) < 1e-3) x = 0.5;  // keep relu's kink out of the differences
        Tensor x = tensor(xv, {n}, dt), dy = tensor(dyv, {n}, dt), dx = Tensor::empty({n}, dt);
        std::vector<double> xs = x.to_doubles(), dys = dy.to_doubles(), want(n);
        for (int64_t i = 0; i < n; ++i) {
          const double h = 1e-5;
          want[i] = dys[i] * (f(xs[i] + h) - f(xs[i] - h)) / (2 * h);
        }
        cpu().unary_grad(op, x, dy, dx);
        check_close(dx, want, tol(dt, 2e-5, 1e-8));
      }
  Tensor z = tensor({0.0, -0.0}, {2}, DType::F64), one = tensor({1.0, 1.0}, {2}, DType::F64),
         dz = Tensor::empty({2}, DType::F64);
  cpu().unary_grad(UnaryOp::Relu, z, one, dz);
  CHECK(dz.to_doubles() == std::vector<double>{0, 0});  // relu'(0) = 0
  CHECK_THROWS_AS(cpu().unary_grad(UnaryOp::Exp, z, one, dz), Error);
}

TEST_CASE("binary ops broadcast on every axis") {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{2, 3, 4}, {2, 3, 4}},
      {{5, 7}, {1, 7}},
      {{1, 7}, {5, 7}},
      {{5, 7}, {5, 1}},
      {{5, 1}, {5, 7}},
      {{5, 7}, {1, 1}},
      {{1, 1}, {5, 7}},
      {{3, 1, 5}, {1, 4, 1}},
      {{2, 1, 3, 1}, {1, 4, 1, 5}},
      {{1}, {1}},
      {{6, 1}, {1, 1}},
      {{300, 257}, {1, 257}},
      {{1000, 1, 67}, {1, 3, 67}},
      {{257, 300}, {257, 1}},
      {{2, 1, 40000}, {1, 2, 1}},
      {{70001}, {1}},
  };
  Rng rng(3);
  for (DType dt : kFloats)
    for (auto& [sa, sb] : shapes)
      for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div}) {
        CAPTURE(shape_str(sa));
        CAPTURE(shape_str(sb));
        CAPTURE(static_cast<int>(op));
        Shape so(sa.size());
        for (size_t k = 0; k < sa.size(); ++k) so[k] = std::max(sa[k], sb[k]);
        std::vector<double> av = uniform(numel_of(sa), rng), bv = uniform(numel_of(sb), rng, 0.5, 2);
        Tensor a = tensor(av, sa, dt), b = tensor(bv, sb, dt), out = Tensor::empty(so, dt);
        av = a.to_doubles(), bv = b.to_doubles();
        std::vector<double> want(numel_of(so));
        for (int64_t i = 0; i < numel_of(so); ++i) {
          auto idx = unravel(i, so);
          double x = av[ravel_bcast(idx, sa)], y = bv[ravel_bcast(idx, sb)];
          want[i] = op == BinaryOp::Add ? x + y : op == BinaryOp::Sub ? x - y : op == BinaryOp::Mul ? x * y : x / y;
        }
        cpu().binary(op, a, b, out);
        check_close(out, want, tol(dt, 1e-6, 1e-15));
        if (sa == so) {  // out may alias an input
          cpu().binary(op, a, b, a);
          check_close(a, want, tol(dt, 1e-6, 1e-15));
        }
      }
}

TEST_CASE("masked_fill with a broadcast mask") {
  Rng rng(4);
  for (DType dt : kFloats)
    for (const Shape& sm : std::vector<Shape>{{4, 5, 6}, {1, 5, 1}, {4, 1, 6}, {1, 1, 1}, {4, 5, 1}}) {
      const Shape sx = {4, 5, 6};
      std::vector<double> xv = uniform(numel_of(sx), rng);
      std::vector<int32_t> mv(numel_of(sm));
      for (auto& m : mv) m = rng.uniform() < 0.4 ? static_cast<int32_t>(rng.below(5)) - 2 : 0;
      Tensor x = tensor(xv, sx, dt), mask = Tensor::from(mv, sm), out = Tensor::empty(sx, dt);
      std::vector<double> xs = x.to_doubles(), want(xv.size());
      for (int64_t i = 0; i < numel_of(sx); ++i) want[i] = mv[ravel_bcast(unravel(i, sx), sm)] != 0 ? -kInf : xs[i];
      cpu().masked_fill(x, mask, -kInf, out);
      check_close(out, want, 0);
    }
  // Large, so that several threads split the runs: mask [1, 1, D] over [B, L, D].
  Tensor x = Tensor::full({8, 64, 129}, 1.0), out = Tensor::empty({8, 64, 129});
  std::vector<int32_t> mv(129);
  for (size_t d = 0; d < mv.size(); ++d) mv[d] = d % 3 == 0;
  cpu().masked_fill(x, Tensor::from(mv, {1, 1, 129}), 5.0, out);
  std::vector<double> o = out.to_doubles();
  bool ok = true;
  for (size_t i = 0; i < o.size(); ++i) ok &= o[i] == (i % 129 % 3 == 0 ? 5.0 : 1.0);
  CHECK(ok);
}

TEST_CASE("sum_to over any set of axes, independent of the thread count") {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 4, 5}, {1, 4, 1}},
      {{3, 4, 5}, {3, 1, 5}},
      {{3, 4, 5}, {1, 1, 1}},
      {{3, 4, 5}, {3, 4, 1}},
      {{3, 4, 5}, {1, 4, 5}},
      {{3, 4, 5}, {3, 4, 5}},
      {{7}, {1}},
      {{1000, 37}, {1, 37}},
      {{37, 1000}, {37, 1}},
      {{2, 3, 4, 5}, {2, 1, 4, 1}},
      {{2, 3, 4, 5}, {1, 3, 1, 5}},
      {{1, 5, 1, 3}, {1, 1, 1, 3}},
      {{100003}, {1}},
      {{3, 70001}, {3, 1}},
      {{1, 300, 5000}, {1, 1, 5000}},
      {{9, 130, 3, 70}, {1, 130, 1, 70}},
      {{5, 0, 3}, {5, 1, 3}},
  };
  Rng rng(5);
  for (DType dt : kFloats)
    for (auto& [sx, so] : cases) {
      CAPTURE(shape_str(sx));
      CAPTURE(shape_str(so));
      std::vector<double> xv = uniform(numel_of(sx), rng);
      Tensor x = tensor(xv, sx, dt), out = Tensor::empty(so, dt);
      xv = x.to_doubles();
      std::vector<double> want(numel_of(so), 0.0);
      for (int64_t i = 0; i < numel_of(sx); ++i) want[ravel_bcast(unravel(i, sx), so)] += xv[i];
      cpu().sum_to(x, out);
      check_close(out, want, tol(dt, 1e-6, 1e-12));
    }
  for (auto& [sx, so] : std::vector<std::pair<Shape, Shape>>{
           {{600001}, {1}}, {{4096, 300}, {1, 300}}, {{300, 4096}, {300, 1}}, {{64, 100, 64}, {1, 100, 1}}}) {
    CAPTURE(shape_str(sx));
    Tensor x = tensor(uniform(numel_of(sx), rng), sx, DType::F32);
    Tensor o1 = Tensor::empty(so), o2 = Tensor::empty(so), o3 = Tensor::empty(so);
    with_threads(1, [&] { cpu().sum_to(x, o1); });
    with_threads(2, [&] { cpu().sum_to(x, o2); });
    with_threads(3, [&] { cpu().sum_to(x, o3); });
    CHECK(bitwise_equal(o1, o2));
    CHECK(bitwise_equal(o1, o3));
  }
}

TEST_CASE("matmul: batches, every transpose flag, float32 and float64") {
  Rng rng(6);
  struct Dims {
    int64_t batch, M, N, K;
  };
  for (DType dt : kFloats)
    for (Dims d : {Dims{1, 7, 5, 9}, Dims{3, 33, 17, 65}, Dims{4, 1, 6, 3}, Dims{5, 8, 1, 1}, Dims{1, 130, 129, 67},
                   Dims{1, 300, 270, 20}, Dims{1, 9, 7, 4100}})  // several output tiles; K split into chunks
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          CAPTURE(d.batch);
          CAPTURE(d.M);
          CAPTURE(ta);
          CAPTURE(tb);
          Shape sa = ta ? Shape{d.batch, d.K, d.M} : Shape{d.batch, d.M, d.K};
          Shape sb = tb ? Shape{d.batch, d.N, d.K} : Shape{d.batch, d.K, d.N};
          Tensor a = tensor(uniform(numel_of(sa), rng), sa, dt), b = tensor(uniform(numel_of(sb), rng), sb, dt);
          Tensor out = Tensor::empty({d.batch, d.M, d.N}, dt);
          std::vector<double> av = a.to_doubles(), bv = b.to_doubles(), want(d.batch * d.M * d.N, 0.0);
          for (int64_t p = 0; p < d.batch; ++p)
            for (int64_t i = 0; i < d.M; ++i)
              for (int64_t j = 0; j < d.N; ++j) {
                double s = 0;
                for (int64_t k = 0; k < d.K; ++k) {
                  double x = ta ? av[(p * d.K + k) * d.M + i] : av[(p * d.M + i) * d.K + k];
                  double y = tb ? bv[(p * d.N + j) * d.K + k] : bv[(p * d.K + k) * d.N + j];
                  s += x * y;
                }
                want[(p * d.M + i) * d.N + j] = s;
              }
          cpu().matmul(a, ta, b, tb, out);
          // Sums of 4100 terms round more, in either precision (float64: up to K eps = 4.6e-13). How much
          // depends on the CPU the GEMM was built for: 1e-13 had passed on earlier machines, and an AVX-512
          // AMD EPYC needs between 1e-13 and 2e-13.
          check_close(out, want, d.K > 1000 ? tol(dt, 2e-4, 5e-13) : tol(dt, 1e-5, 1e-13));
        }
  Tensor a = Tensor::empty({2, 3, 0}), b = Tensor::empty({2, 0, 4}), out = Tensor::full({2, 3, 4}, 9.0);
  cpu().matmul(a, false, b, false, out);  // an empty inner dimension gives zeros
  CHECK(out.to_doubles() == std::vector<double>(24, 0.0));
}

TEST_CASE("matmul gives the same bits for any thread count: output tiles and split K sums") {
  // Shapes that take every path of gemm.cpp: one tile; many output tiles; few tiles and a long K (split
  // into chunks summed in order); a batch of small matrices.
  Rng rng(61);
  struct Dims {
    int64_t batch, M, N, K;
  };
  for (Dims d : {Dims{1, 64, 48, 80}, Dims{1, 256, 256, 3000}, Dims{1, 700, 300, 64}, Dims{1, 64, 192, 9000},
                 Dims{16, 40, 40, 16}})
    for (bool ta : {false, true}) {
      CAPTURE(d.M);
      CAPTURE(d.K);
      CAPTURE(ta);
      Shape sa = ta ? Shape{d.batch, d.K, d.M} : Shape{d.batch, d.M, d.K};
      Tensor a = tensor(uniform(numel_of(sa), rng), sa, DType::F32);
      Tensor b = tensor(uniform(d.batch * d.K * d.N, rng), {d.batch, d.K, d.N}, DType::F32);
      std::vector<std::vector<double>> got;
      for (int n : {1, 2, 3}) {
        Tensor out = Tensor::empty({d.batch, d.M, d.N}, DType::F32);
        with_threads(n, [&] { cpu().matmul(a, ta, b, false, out); });
        got.push_back(out.to_doubles());
      }
      CHECK(got[0] == got[1]);
      CHECK(got[0] == got[2]);
    }
}

TEST_CASE("permute: every permutation of small shapes, size-1 axes, tiled transposes, any dtype") {
  Rng rng(7);
  auto check_perm = [&](const Shape& sx, const std::vector<int>& perm, DType dt) {
    CAPTURE(shape_str(sx));
    std::string ps;
    for (int p : perm) ps += std::to_string(p) + " ";
    CAPTURE(ps);
    std::vector<double> xv(numel_of(sx));
    for (double& v : xv) v = static_cast<double>(rng.below(1000000)) - 500000;  // exact in every dtype
    Tensor x = tensor(xv, sx, DType::F64).to(dt);
    Shape so(sx.size());
    for (size_t i = 0; i < perm.size(); ++i) so[i] = sx[perm[i]];
    Tensor out = Tensor::empty(so, dt);
    std::vector<double> want(xv.size());
    for (int64_t i = 0; i < numel_of(so); ++i) {
      auto oi = unravel(i, so);
      std::vector<int64_t> xi(sx.size());
      for (size_t k = 0; k < perm.size(); ++k) xi[perm[k]] = oi[k];
      want[i] = xv[ravel_bcast(xi, sx)];
    }
    cpu().permute(x, perm, out);
    check_close(out, want, 0);
  };
  for (DType dt : {DType::F32, DType::F64, DType::I32}) {
    std::vector<int> p = {0, 1, 2};
    do check_perm({2, 3, 4}, p, dt);
    while (std::next_permutation(p.begin(), p.end()));
    std::vector<int> q = {0, 1, 2, 3};
    do check_perm({5, 1, 7, 3}, q, dt);
    while (std::next_permutation(q.begin(), q.end()));
    check_perm({37, 45}, {1, 0}, dt);
    check_perm({3, 70, 33}, {0, 2, 1}, dt);
    check_perm({2, 3, 4, 5}, {0, 2, 1, 3}, dt);  // [B, L, H, Dh] -> [B, H, L, Dh]
    check_perm({2, 3, 4, 5}, {1, 0, 3, 2}, dt);
    check_perm({4, 1, 130, 1, 99}, {0, 3, 4, 1, 2}, dt);
    check_perm({6, 300, 70}, {2, 0, 1}, dt);
  }
}

TEST_CASE("copy_axis copies a block along each axis and leaves the rest of dst alone") {
  Rng rng(8);
  for (DType dt : {DType::F32, DType::F64, DType::I32})
    for (int axis = 0; axis < 3; ++axis) {
      Shape ss = {3, 5, 4}, sd = {3, 5, 4};
      ss[axis] = 5, sd[axis] = 6;
      std::vector<double> sv(numel_of(ss));
      for (double& v : sv) v = static_cast<double>(rng.below(100));
      Tensor src = tensor(sv, ss, DType::F64).to(dt), dst = Tensor::full(sd, -1.0, dt);
      cpu().copy_axis(src, 1, dst, 3, axis, 2);
      std::vector<double> want(numel_of(sd), -1.0);
      for (int64_t i = 0; i < numel_of(sd); ++i) {
        auto idx = unravel(i, sd);
        if (idx[axis] >= 3 && idx[axis] < 5) {
          idx[axis] += 1 - 3;
          want[i] = sv[ravel_bcast(idx, ss)];
        }
      }
      check_close(dst, want, 0);
    }
}

// Stable softmax of one row in double, the reference for softmax and cross-entropy.
static std::vector<double> ref_softmax(const std::vector<double>& x) {
  double m = -kInf;
  for (double v : x) m = std::max(m, v);
  std::vector<double> y(x.size(), 0.0);
  if (m == -kInf) return y;
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += y[i] = std::exp(x[i] - m);
  for (double& v : y) v /= s;
  return y;
}

TEST_CASE("softmax and its gradient: stable for +-1e4, zeros for an all -inf row") {
  Rng rng(9);
  for (DType dt : kFloats)
    for (const Shape& s : std::vector<Shape>{{5, 13}, {3, 1}, {1, 1000}, {2, 3, 17}, {600, 130}}) {
      CAPTURE(shape_str(s));
      const int64_t C = s.back(), R = numel_of(s) / C;
      std::vector<double> xv = uniform(numel_of(s), rng, -5, 5);
      if (R >= 3 && C >= 2) {
        for (int64_t c = 0; c < C; ++c) xv[c] = c % 2 ? 1e4 : -1e4;  // huge logits
        for (int64_t c = 0; c < C; ++c) xv[C + c] = -kInf;           // fully masked
        xv[2 * C] = -kInf;                                           // partly masked
      }
      Tensor x = tensor(xv, s, dt), y = Tensor::empty(s, dt);
      xv = x.to_doubles();
      std::vector<double> want, dyv = uniform(numel_of(s), rng), dwant;
      for (int64_t r = 0; r < R; ++r) {
        auto row = ref_softmax(std::vector<double>(xv.begin() + r * C, xv.begin() + (r + 1) * C));
        want.insert(want.end(), row.begin(), row.end());
      }
      cpu().softmax(x, y);
      check_close(y, want, tol(dt, 1e-6, 1e-14));
      Tensor dy = tensor(dyv, s, dt), dx = Tensor::empty(s, dt);
      std::vector<double> ys = y.to_doubles(), dys = dy.to_doubles();
      for (int64_t r = 0; r < R; ++r) {
        double dot = 0;
        for (int64_t c = 0; c < C; ++c) dot += ys[r * C + c] * dys[r * C + c];
        for (int64_t c = 0; c < C; ++c) dwant.push_back(ys[r * C + c] * (dys[r * C + c] - dot));
      }
      cpu().softmax_grad(y, dy, dx);
      check_close(dx, dwant, tol(dt, 1e-6, 1e-14));
      cpu().softmax(x, x);  // in place
      check_close(x, want, tol(dt, 1e-6, 1e-14));
    }
}

TEST_CASE("cross_entropy and its gradient, ignore_index, huge logits, bad targets") {
  Rng rng(10);
  for (DType dt : kFloats)
    for (auto [N, C] : std::vector<std::pair<int64_t, int64_t>>{{6, 11}, {1, 1}, {300, 257}}) {
      CAPTURE(N);
      CAPTURE(C);
      std::vector<double> xv = uniform(N * C, rng, -4, 4);
      if (C > 1)
        for (int64_t c = 0; c < C; ++c) xv[c] = c % 3 ? -1e4 : 1e4;
      std::vector<int32_t> tv(N);
      for (auto& t : tv) t = static_cast<int32_t>(rng.below(C));
      if (N > 2) tv[2] = -100;
      Tensor x = tensor(xv, {N, C}, dt), t = Tensor::from(tv, {N});
      Tensor loss = Tensor::empty({N}, dt), dl = Tensor::empty({N, C}, dt);
      xv = x.to_doubles();
      std::vector<double> want_loss, want_grad;
      const double scale = 0.37;
      for (int64_t n = 0; n < N; ++n) {
        std::vector<double> row(xv.begin() + n * C, xv.begin() + (n + 1) * C);
        double m = -kInf, s = 0;
        for (double v : row) m = std::max(m, v);
        for (double v : row) s += std::exp(v - m);
        want_loss.push_back(tv[n] == -100 ? 0 : m + std::log(s) - row[tv[n]]);
        auto p = ref_softmax(row);
        for (int64_t c = 0; c < C; ++c) want_grad.push_back(tv[n] == -100 ? 0 : scale * (p[c] - (c == tv[n])));
      }
      cpu().cross_entropy(x, t, -100, loss);
      check_close(loss, want_loss, tol(dt, 1e-5, 1e-13));
      cpu().cross_entropy_grad(x, t, -100, scale, dl);
      check_close(dl, want_grad, tol(dt, 1e-6, 1e-14));
    }
  Tensor x = Tensor::zeros({3, 4}), loss = Tensor::empty({3});
  for (int32_t bad : {4, -1, -7}) {
    Tensor t = Tensor::from(std::vector<int32_t>{0, bad, 1}, {3});
    try {
      cpu().cross_entropy(x, t, -100, loss);
      FAIL("no error for target " << bad);
    } catch (const Error& e) {
      std::string msg = e.what();
      CHECK(msg.find("cross_entropy") != std::string::npos);
      CHECK(msg.find("row 1") != std::string::npos);
      CHECK(msg.find(std::to_string(bad)) != std::string::npos);
    }
  }
}

TEST_CASE("layer_norm forward and backward; dgamma/dbeta independent of the thread count") {
  Rng rng(11);
  const double eps = 1e-5;
  for (DType dt : kFloats)
    for (auto [R, D] : std::vector<std::pair<int64_t, int64_t>>{{7, 33}, {1, 5}, {300, 130}, {3, 1}}) {
      CAPTURE(R);
      CAPTURE(D);
      std::vector<double> xv = uniform(R * D, rng, -3, 5), gv = uniform(D, rng, 0.5, 1.5), bv = uniform(D, rng),
                          dyv = uniform(R * D, rng);
      Tensor x = tensor(xv, {R, D}, dt), g = tensor(gv, {D}, dt), b = tensor(bv, {D}, dt), dy = tensor(dyv, {R, D}, dt);
      xv = x.to_doubles(), gv = g.to_doubles(), bv = b.to_doubles(), dyv = dy.to_doubles();
      Tensor y = Tensor::empty({R, D}, dt), mean = Tensor::empty({R}, dt), rstd = Tensor::empty({R}, dt);
      Tensor dx = Tensor::empty({R, D}, dt), dg = Tensor::empty({D}, dt), db = Tensor::empty({D}, dt);
      std::vector<double> wy(R * D), wm(R), wr(R), wdx(R * D), wdg(D, 0.0), wdb(D, 0.0);
      for (int64_t r = 0; r < R; ++r) {
        const double* xr = &xv[r * D];
        double mu = 0, var = 0;
        for (int64_t i = 0; i < D; ++i) mu += xr[i] / D;
        for (int64_t i = 0; i < D; ++i) var += (xr[i] - mu) * (xr[i] - mu) / D;
        double rs = 1 / std::sqrt(var + eps);
        wm[r] = mu, wr[r] = rs;
        double sg = 0, sgx = 0;
        for (int64_t i = 0; i < D; ++i) {
          double xh = (xr[i] - mu) * rs, gi = dyv[r * D + i] * gv[i];
          wy[r * D + i] = xh * gv[i] + bv[i];
          sg += gi / D, sgx += gi * xh / D;
          wdg[i] += dyv[r * D + i] * xh, wdb[i] += dyv[r * D + i];
        }
        for (int64_t i = 0; i < D; ++i) {
          double xh = (xr[i] - mu) * rs;
          wdx[r * D + i] = rs * (dyv[r * D + i] * gv[i] - sg - xh * sgx);
        }
      }
      cpu().layer_norm(x, g, b, eps, y, mean, rstd);
      check_close(y, wy, tol(dt, 2e-5, 1e-12));
      check_close(mean, wm, tol(dt, 1e-6, 1e-13));
      check_close(rstd, wr, tol(dt, 1e-5, 1e-12));
      cpu().layer_norm_grad(x, g, mean, rstd, dy, dx, dg, db);
      check_close(dx, wdx, tol(dt, 1e-4, 1e-10));
      check_close(dg, wdg, tol(dt, 1e-5, 1e-11));
      check_close(db, wdb, tol(dt, 1e-6, 1e-12));
    }
  const int64_t R = 2000, D = 96;
  Tensor x = tensor(uniform(R * D, rng), {R, D}, DType::F32), g = Tensor::full({D}, 1.1),
         dy = tensor(uniform(R * D, rng), {R, D}, DType::F32);
  Tensor mean = Tensor::empty({R}), rstd = Tensor::empty({R}), y = Tensor::empty({R, D});
  cpu().layer_norm(x, g, g, eps, y, mean, rstd);
  Tensor dx[2] = {Tensor::empty({R, D}), Tensor::empty({R, D})}, dg[2] = {Tensor::empty({D}), Tensor::empty({D})},
         db[2] = {Tensor::empty({D}), Tensor::empty({D})};
  for (int k = 0; k < 2; ++k)
    with_threads(k + 1, [&] { cpu().layer_norm_grad(x, g, mean, rstd, dy, dx[k], dg[k], db[k]); });
  CHECK(bitwise_equal(dx[0], dx[1]));
  CHECK(bitwise_equal(dg[0], dg[1]));
  CHECK(bitwise_equal(db[0], db[1]));
}

TEST_CASE("embedding gather, scatter-add backward with repeated ids, bad ids") {
  Rng rng(12);
  for (DType dt : kFloats)
    for (auto [V, D, N] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{7, 5, 11}, {50, 300, 4000}, {3, 1, 9}}) {
      CAPTURE(D);
      std::vector<double> tv = uniform(V * D, rng), gv = uniform(N * D, rng);
      std::vector<int32_t> ids(N);
      for (auto& i : ids) i = static_cast<int32_t>(rng.below(V));
      ids[0] = 0, ids[N - 1] = static_cast<int32_t>(V - 1), ids[1] = ids[2];  // both ends, a repeat
      Tensor table = tensor(tv, {V, D}, dt), id = Tensor::from(ids, {N}), out = Tensor::empty({N, D}, dt);
      tv = table.to_doubles();
      std::vector<double> want(N * D), wgrad(V * D, 0.0);
      Tensor dout = tensor(gv, {N, D}, dt);
      gv = dout.to_doubles();
      for (int64_t n = 0; n < N; ++n)
        for (int64_t d = 0; d < D; ++d) want[n * D + d] = tv[ids[n] * D + d], wgrad[ids[n] * D + d] += gv[n * D + d];
      cpu().embedding(table, id, out);
      check_close(out, want, 0);
      Tensor dtable = Tensor::zeros({V, D}, dt);
      cpu().embedding_grad(id, dout, dtable);
      check_close(dtable, wgrad, tol(dt, 2e-5, 1e-14));  // float32 sums of ~80 rows
    }
  Tensor table = Tensor::zeros({4, 3}), out = Tensor::empty({3, 3});
  for (int32_t bad : {4, -1}) {
    Tensor ids = Tensor::from(std::vector<int32_t>{1, 2, bad}, {3});
    try {
      cpu().embedding(table, ids, out);
      FAIL("no error for id " << bad);
    } catch (const Error& e) {
      std::string msg = e.what();
      CHECK(msg.find("embedding") != std::string::npos);
      CHECK(msg.find("position 2") != std::string::npos);
      CHECK(msg.find("id " + std::to_string(bad)) != std::string::npos);
    }
  }
}

TEST_CASE("dropout_mask: same for any thread count, keeps about 1 - p, values 0 or 1/(1-p)") {
  const int64_t n = 200003;
  for (DType dt : kFloats)
    for (double p : {0.1, 0.3, 0.5}) {
      Tensor m1 = Tensor::empty({n}, dt), m2 = Tensor::empty({n}, dt), m3 = Tensor::empty({n}, dt);
      with_threads(1, [&] { cpu().dropout_mask(42, p, m1); });
      with_threads(2, [&] { cpu().dropout_mask(42, p, m2); });
      cpu().dropout_mask(43, p, m3);
      CHECK(bitwise_equal(m1, m2));
      CHECK_FALSE(bitwise_equal(m1, m3));
      std::vector<double> v = m1.to_doubles();
      int64_t kept = 0;
      bool values_ok = true;
      const double keep = dt == DType::F32 ? static_cast<float>(1 / (1 - p)) : 1 / (1 - p);
      for (double x : v) kept += x != 0, values_ok &= x == 0 || x == keep;
      CHECK(values_ok);
      CHECK(std::abs(static_cast<double>(kept) / n - (1 - p)) < 0.005);
      // Element i depends on (seed, i) only: a shorter tensor is a prefix of a longer one.
      Tensor shorter = Tensor::empty({1000}, dt);
      cpu().dropout_mask(42, p, shorter);
      CHECK(std::memcmp(shorter.raw(), m1.raw(), shorter.nbytes()) == 0);
    }
  Tensor all = Tensor::empty({100});
  cpu().dropout_mask(1, 0.0, all);
  CHECK(all.to_doubles() == std::vector<double>(100, 1.0));
  cpu().dropout_mask(1, 1.0, all);
  CHECK(all.to_doubles() == std::vector<double>(100, 0.0));
}

TEST_CASE("avg_pool_seq equals the direct window sum, edges and L < P included") {
  Rng rng(13);
  for (DType dt : kFloats)
    for (int64_t L : {1, 2, 5, 17, 300})
      for (int64_t D : {3, 300})
        for (int64_t P : {1, 3, 5, 7, 9}) {
          CAPTURE(L);
          CAPTURE(D);
          CAPTURE(P);
          const int64_t B = 2, h = P / 2;
          std::vector<double> xv = uniform(B * L * D, rng);
          Tensor x = tensor(xv, {B, L, D}, dt), out = Tensor::empty({B, L, D}, dt);
          xv = x.to_doubles();
          std::vector<double> want(B * L * D);
          for (int64_t b = 0; b < B; ++b)
            for (int64_t l = 0; l < L; ++l)
              for (int64_t d = 0; d < D; ++d) {
                double s = 0;
                for (int64_t j = l - h; j <= l + h; ++j)
                  if (j >= 0 && j < L) s += xv[(b * L + j) * D + d];
                want[(b * L + l) * D + d] = s / P;
              }
          cpu().avg_pool_seq(x, P, out);
          check_close(out, want, tol(dt, 1e-6, 1e-13));
        }
}

TEST_CASE("the kernel profile times each call into its part and changes no result") {
  Rng rng(7);
  const Tensor a = Tensor::from(uniform(300 * 200, rng), {300, 200}),
               b = Tensor::from(uniform(200 * 100, rng), {200, 100});
  const Tensor plain = matmul(a, b);
  CHECK(&backend(Device::CPU) == &cpu_backend());  // no profile: the backend itself
  {
    KernelProfile prof;
    CHECK(&backend(Device::CPU) != &cpu_backend());  // the timing wrapper
    CHECK_THROWS_WITH_AS(KernelProfile(), doctest::Contains("already alive"), Error);
    const Tensor timed = matmul(a, b);
    CHECK(std::memcmp(timed.data<double>(), plain.data<double>(), 300 * 100 * sizeof(double)) == 0);
    CHECK(prof.seconds(KernelPart::Gemm) > 0);
    CHECK(prof.seconds(KernelPart::Optimizer) == 0);
    CHECK(prof.seconds(KernelPart::Norm) == 0);
    const double gemm = prof.seconds(KernelPart::Gemm);
    exp(a);
    CHECK(prof.seconds(KernelPart::Elementwise) > 0);
    CHECK(prof.seconds(KernelPart::Gemm) == gemm);  // an element-wise op adds nothing to GEMM
    CHECK(prof.total() >= prof.seconds(KernelPart::Gemm) + prof.seconds(KernelPart::Elementwise));
    prof.reset();
    CHECK(prof.total() == 0);
  }
  CHECK(&backend(Device::CPU) == &cpu_backend());  // gone with the profile
}
