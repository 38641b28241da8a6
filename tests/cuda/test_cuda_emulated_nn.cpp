// The CUDA backend's neural-network kernels (engine/cuda/nn_kernels.cuh: softmax, cross-entropy, layer
// norm, embedding, sequence pooling), run on the CPU emulator of CUDA's thread model against the CPU
// backend, in float32 and float64, at row lengths below, at and above a block's width (row kernels use
// 32..256 threads and loop when a row is longer), and with the bad targets and ids the kernels report.
//
// Tolerance: |emulated - cpu| <= tol (1 + |cpu|) per entry, tol = 1e-12 in float64 and 1e-5 in float32.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "tests/cuda/emulated.h"

#include "engine/cuda/nn_kernels.cuh"

using namespace lasgrad;
using namespace lasgrad::emulated;

namespace {

const simt::Launch kLaunch{nullptr, 0};  // these kernels use no dynamic shared memory
constexpr DType kDtypes[] = {DType::F32, DType::F64};

double tol_of(DType dt) { return dt == DType::F64 ? 1e-12 : 1e-5; }

std::string named(const char* op, DType dt, int64_t R, int64_t C) {
  return std::string(op) + " " + dtype_name(dt) + " [" + std::to_string(R) + ", " + std::to_string(C) + "]";
}

// A disarmed flag reads (-1, -1); a kernel that finds a bad entry writes (row or position, value).
struct Flag {
  int words[2] = {-1, -1};
  bool raised() const { return words[0] != -1; }
};

}  // namespace

TEST_CASE("emulated cuda softmax and its gradient equal the CPU's, including a row of -inf") {
  Rng rng(1);
  for (DType dt : kDtypes)
    for (int64_t C : {1, 5, 32, 33, 300}) {
      const int64_t R = 4;
      const std::string name = named("softmax", dt, R, C);
      std::vector<double> xs = random({R, C}, rng, DType::F64, -5, 5).to_doubles();
      for (int64_t c = 0; c < C; ++c) xs[static_cast<size_t>(2 * C + c)] = -INFINITY;  // row 2: no finite logit
      const Tensor x = Tensor::from(xs, {R, C}, dt), dy = random({R, C}, rng, dt);
      Tensor y = unwritten({R, C}, dt), y_cpu = unwritten({R, C}, dt);
      Tensor dx = unwritten({R, C}, dt), dx_cpu = unwritten({R, C}, dt);
      cpu_backend().softmax(x, y_cpu);
      cpu_backend().softmax_grad(y_cpu, dy, dx_cpu);
      cuda::nn::softmax(x, y, kLaunch);
      cuda::nn::softmax_grad(y_cpu, dy, dx, kLaunch);  // the same y on both sides
      expect_close(y, y_cpu, tol_of(dt), name + ": y");
      expect_close(dx, dx_cpu, tol_of(dt), name + ": dx");
    }
}

TEST_CASE("emulated cuda cross-entropy and its gradient equal the CPU's; ignored rows; bad targets are reported") {
  Rng rng(2);
  for (DType dt : kDtypes)
    for (int64_t C : {2, 10, 257}) {
      const int64_t N = 5, ignore = -100;
      const std::string name = named("cross_entropy", dt, N, C);
      const Tensor logits = random({N, C}, rng, dt, -8, 8);
      const Tensor targets = Tensor::from(std::vector<int32_t>{0, static_cast<int32_t>(C - 1), -100, 1, 0}, {N});
      Tensor loss = unwritten({N}, dt), loss_cpu = unwritten({N}, dt);
      Tensor dl = unwritten({N, C}, dt), dl_cpu = unwritten({N, C}, dt);
      Flag f1, f2;
      cuda::nn::cross_entropy(logits, targets, ignore, loss, f1.words, kLaunch);
      cuda::nn::cross_entropy_grad(logits, targets, ignore, 0.25, dl, f2.words, kLaunch);
      CHECK(!f1.raised());
      CHECK(!f2.raised());
      cpu_backend().cross_entropy(logits, targets, ignore, loss_cpu);
      cpu_backend().cross_entropy_grad(logits, targets, ignore, 0.25, dl_cpu);
      expect_close(loss, loss_cpu, tol_of(dt), name + ": loss");
      expect_close(dl, dl_cpu, tol_of(dt), name + ": dlogits");
    }
  // Targets outside [0, C) other than the ignore index: the first bad row and its value are recorded.
  const Tensor logits = Tensor::zeros({4, 3});
  const Tensor targets = Tensor::from(std::vector<int32_t>{0, 2, 3, -1}, {4});
  Tensor loss = Tensor::zeros({4}), dl = Tensor::zeros({4, 3});
  Flag f1, f2;
  cuda::nn::cross_entropy(logits, targets, -100, loss, f1.words, kLaunch);
  cuda::nn::cross_entropy_grad(logits, targets, -100, 1.0, dl, f2.words, kLaunch);
  CHECK(f1.words[0] == 2);  // blocks run in order on the emulator: row 2 is the first to report
  CHECK(f1.words[1] == 3);
  CHECK(f2.words[0] == 2);
  CHECK(f2.words[1] == 3);
}

TEST_CASE("emulated cuda layer norm and its gradient equal the CPU's, over one and two partial-sum slices") {
  Rng rng(3);
  for (DType dt : kDtypes) {
    struct Size {
      int64_t R, D;
    };
    // R = 300 rows: two slices of the dgamma/dbeta partial sums (256 rows each); D = 300: rows longer
    // than the block.
    // R = 0: no rows, so dgamma and dbeta are zeros.
    for (const Size& s : {Size{3, 1}, Size{5, 7}, Size{4, 64}, Size{300, 6}, Size{2, 300}, Size{0, 5}}) {
      const std::string name = named("layer_norm", dt, s.R, s.D);
      const Tensor x = random({s.R, s.D}, rng, dt, -3, 3), gamma = random({s.D}, rng, dt),
                   beta = random({s.D}, rng, dt), dy = random({s.R, s.D}, rng, dt);
      Tensor y = unwritten({s.R, s.D}, dt), mean = unwritten({s.R}, dt), rstd = unwritten({s.R}, dt);
      Tensor y_cpu = unwritten({s.R, s.D}, dt), mean_cpu = unwritten({s.R}, dt), rstd_cpu = unwritten({s.R}, dt);
      Tensor dx = unwritten({s.R, s.D}, dt), dg = unwritten({s.D}, dt), db = unwritten({s.D}, dt);
      Tensor dx_cpu = unwritten({s.R, s.D}, dt), dg_cpu = unwritten({s.D}, dt), db_cpu = unwritten({s.D}, dt);
      cpu_backend().layer_norm(x, gamma, beta, 1e-5, y_cpu, mean_cpu, rstd_cpu);
      cpu_backend().layer_norm_grad(x, gamma, mean_cpu, rstd_cpu, dy, dx_cpu, dg_cpu, db_cpu);
      NanScratch scratch;
      cuda::nn::layer_norm(x, gamma, beta, 1e-5, y, mean, rstd, kLaunch);
      cuda::nn::layer_norm_grad(x, gamma, mean_cpu, rstd_cpu, dy, dx, dg, db, scratch, kLaunch);
      expect_close(y, y_cpu, tol_of(dt), name + ": y");
      expect_close(mean, mean_cpu, tol_of(dt), name + ": mean");
      expect_close(rstd, rstd_cpu, tol_of(dt), name + ": rstd");
      expect_close(dx, dx_cpu, tol_of(dt), name + ": dx");
      expect_close(dg, dg_cpu, tol_of(dt), name + ": dgamma");
      expect_close(db, db_cpu, tol_of(dt), name + ": dbeta");
    }
  }
}

TEST_CASE("emulated cuda embedding and its gradient equal the CPU's; bad ids are reported") {
  Rng rng(4);
  const int64_t V = 7, D = 5;
  const Tensor ids = Tensor::from(std::vector<int32_t>{3, 0, 6, 3, 3, 1}, {2, 3});
  for (DType dt : kDtypes) {
    const Tensor table = random({V, D}, rng, dt), dout = random({2, 3, D}, rng, dt);
    Tensor out = unwritten({2, 3, D}, dt), out_cpu = unwritten({2, 3, D}, dt);
    Flag f;
    cuda::nn::embedding(table, ids, out, f.words, kLaunch);
    CHECK(!f.raised());
    cpu_backend().embedding(table, ids, out_cpu);
    CHECK(out.to_doubles() == out_cpu.to_doubles());  // a copy: bit for bit

    Tensor dtable = Tensor::zeros({V, D}, dt), dtable_cpu = Tensor::zeros({V, D}, dt);
    Flag g;
    cuda::nn::check_ids(ids, V, g.words, kLaunch);
    CHECK(!g.raised());
    cuda::nn::embedding_grad(ids, dout, dtable, kLaunch);
    cpu_backend().embedding_grad(ids, dout, dtable_cpu);
    CHECK(dtable.to_doubles() == dtable_cpu.to_doubles());  // the same additions in the same order
  }
  const Tensor bad = Tensor::from(std::vector<int32_t>{0, 7, -2}, {3});
  Tensor table = Tensor::zeros({V, D}), out = Tensor::zeros({3, D});
  Flag f, g;
  cuda::nn::embedding(table, bad, out, f.words, kLaunch);
  cuda::nn::check_ids(bad, V, g.words, kLaunch);
  CHECK(f.words[0] == 1);
  CHECK(f.words[1] == 7);
  CHECK(g.words[0] == 1);
  CHECK(g.words[1] == 7);
}

TEST_CASE("emulated cuda sequence average pooling equals the CPU's, windows wider than the sequence included") {
  Rng rng(5);
  for (DType dt : kDtypes)
    for (int64_t P : {1, 3, 5, 9}) {
      const Tensor x = random({2, 6, 3}, rng, dt);
      Tensor out = unwritten({2, 6, 3}, dt), out_cpu = unwritten({2, 6, 3}, dt);
      cuda::nn::avg_pool_seq(x, P, out, kLaunch);
      cpu_backend().avg_pool_seq(x, P, out_cpu);
      expect_close(out, out_cpu, tol_of(dt), std::string("avg_pool_seq P ") + std::to_string(P) + " " + dtype_name(dt));
    }
}
