// The whole-model cases (model_cases.h) on the emulated CUDA device: training, evaluation and attention
// maps through the CUDA kernels on the CPU emulator (emulated_backend.h) against the CPU, on every build.
// This is what would have caught the first GPU run's failure (a position table made on the CPU) here.
#include "tests/cuda/emulated_backend.h"
#include "tests/cuda/model_cases.h"

using namespace lasgrad;

TEST_CASE("model cases: training, evaluation and attention on the emulated cuda device equal the cpu") {
  emulated::EmulatedCudaBackend emulated;
  CudaStandIn stand_in(emulated);
  for (const test::ModelCase& c : test::model_cases()) {
    CAPTURE(test::case_name(c));
    test::check_model_case_on_device(c, Device::CUDA);
  }
}
