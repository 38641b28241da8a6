#include "engine/backend.h"

namespace lasgrad {

Backend& backend(Device device) {
  if (device == Device::CPU) return cpu_backend();
#ifdef LASGRAD_HAVE_CUDA
  return cuda_backend();
#else
  throw Error("this lasgrad was built without CUDA, so it has no cuda device (configure on a machine with nvcc and cuBLAS)");
#endif
}

}  // namespace lasgrad
