#include "engine/backend.h"

#include "engine/profile.h"

#ifdef LASGRAD_HAVE_CUDA
#include "engine/cuda/cuda_backend.h"
#endif

namespace lasgrad {

static Backend* g_cuda_stand_in = nullptr;

CudaStandIn::CudaStandIn(Backend& stand_in) {
  if (g_cuda_stand_in) throw Error("CudaStandIn: another stand-in for the cuda device is alive");
  g_cuda_stand_in = &stand_in;
}

CudaStandIn::~CudaStandIn() { g_cuda_stand_in = nullptr; }

Backend& backend(Device device) {
  if (device == Device::CPU) return profiled_cpu_backend();
  if (g_cuda_stand_in) return *g_cuda_stand_in;
#ifdef LASGRAD_HAVE_CUDA
  return cuda_backend();
#else
  throw Error(
      "this lasgrad was built without CUDA, so it has no cuda device (configure on a machine with nvcc and cuBLAS)");
#endif
}

bool device_available(Device device, std::string* why) {
  if (device == Device::CPU || g_cuda_stand_in) return true;
#ifdef LASGRAD_HAVE_CUDA
  std::string reason;
  if (cuda_device_available(&reason)) return true;
  if (why) *why = "no CUDA device: " + reason;
#else
  if (why) *why = "this lasgrad was built without CUDA (no nvcc and cuBLAS at configure time, or LASGRAD_CUDA=OFF)";
#endif
  return false;
}

void use_cuda_device(int index) {
#ifdef LASGRAD_HAVE_CUDA
  cuda_use_device(index);
#else
  throw Error("use_cuda_device(" + std::to_string(index) + "): this lasgrad was built without CUDA");
#endif
}

Device parse_device(const std::string& name, const std::string& what) {
  for (const auto& d : kDeviceNames)
    if (name == d.name) return d.value;
  throw Error(what + ": unknown device '" + name + "' (" + names_list(kDeviceNames, " or ") + ")");
}

}  // namespace lasgrad
