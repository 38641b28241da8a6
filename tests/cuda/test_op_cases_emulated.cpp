// The op-case table (tests/engine/op_cases.h) and the attention case table (tests/engine/attention_cases.h)
// in their emulated mode: every case through the CUDA backend's kernels on the CPU emulator
// (emulated_backend.h) against the CPU, float32, float64 and the bf16 mode, the output and every
// floating input's gradient. Runs in every build, with or without CUDA.
#include "tests/cuda/emulated_backend.h"
#include "tests/engine/attention_cases.h"
#include "tests/engine/op_cases.h"

using namespace lasgrad;
using namespace lasgrad::test;

TEST_CASE("op cases: the emulated cuda kernels equal the cpu, output and gradients") {
  emulated::EmulatedCudaBackend emulated;
  CudaStandIn stand_in(emulated);
  for (const OpCase& c : op_cases())
    for (DType dt : {DType::F32, DType::F64, DType::BF16})
      if (dt != DType::BF16 || c.bf16) {
        CAPTURE(c.name);
        check_case_on_device(c, dt, Device::CUDA);
      }
}

TEST_CASE("attention cases: the emulated cuda kernels equal the cpu, output and gradients") {
  emulated::EmulatedCudaBackend emulated;
  CudaStandIn stand_in(emulated);
  for (const AttentionCase& c : attention_cases()) {
    check_attention_on_device(c, DType::F64, Device::CUDA, 1e-10);
    check_attention_on_device(c, DType::F32, Device::CUDA, 2e-5);
    check_attention_on_device(c, DType::BF16, Device::CUDA, kTolBf16);
  }
}

TEST_CASE("the emulated backend serves Device::CUDA only while its stand-in is alive") {
  emulated::EmulatedCudaBackend emulated;
  {
    CudaStandIn stand_in(emulated);
    CHECK(device_available(Device::CUDA));
    CHECK(std::string(backend(Device::CUDA).name()) == "cuda (emulated)");
    CHECK_THROWS_AS(CudaStandIn{emulated}, Error);  // one at a time
  }
  CHECK(&backend(Device::CPU) != static_cast<Backend*>(&emulated));
#ifndef LASGRAD_HAVE_CUDA
  CHECK_FALSE(device_available(Device::CUDA));
#endif
}
