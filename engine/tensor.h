// Tensor: a shared handle to a contiguous, row-major block of one dtype on one device, plus the
// autodiff fields (requires_grad, the node that made it, the gradient accumulated into a leaf).
//
// Storage is always contiguous, so reshape shares the block and costs nothing; permute and slice
// copy. Copies of a Tensor handle alias the same TensorImpl (like torch.Tensor in Python).
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/names.h"

namespace lasgrad {

// BF16: bfloat16 (engine/bf16.h), a storage and operand type: tensors convert to and from it (cast),
// safetensors files hold it, and matmul and the fused attention take bf16 operands and give float32
// results; every other arithmetic op takes F32 and F64.
enum class DType : uint8_t { F32, F64, I32, BF16 };
enum class Device : uint8_t { CPU, CUDA };
using Shape = std::vector<int64_t>;

const char* dtype_name(DType d);
inline constexpr EnumName<Device> kDeviceNames[] = {{Device::CPU, "cpu"}, {Device::CUDA, "cuda"}};
inline const char* device_name(Device d) { return name_of(kDeviceNames, d); }
// Inline, so that code checking shapes and sizes without tensors (the safetensors header check, which
// the fuzzer builds alone) needs no tensor runtime.
inline size_t dtype_size(DType d) { return d == DType::F64 ? 8 : d == DType::BF16 ? 2 : 4; }
// The dtype that arithmetic on d-operands yields, float32 for bfloat16 (accumulation in float32), else d;
// also the dtype of a bfloat16 tensor's gradient, so that gradients are never rounded where they sum.
inline DType compute_dtype(DType d) { return d == DType::BF16 ? DType::F32 : d; }
inline std::string shape_str(const Shape& s) {  // "[2, 3, 4]"
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
int64_t numel_of(const Shape& s);

// A block of memory owned by a device's allocator; returned to it on destruction.
class Backend;
struct Storage {
  void* ptr = nullptr;
  size_t bytes = 0;
  Device device = Device::CPU;
  Backend* owner = nullptr;  // the backend that allocated ptr, which frees it (see CudaStandIn)
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct Node;
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;  // undefined; defined() is false

  // Factories. Floating-point values are converted to the dtype.
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor from(const std::vector<float>& values, const Shape& shape, DType dtype = DType::F32,
                     Device device = Device::CPU);
  static Tensor from(const std::vector<double>& values, const Shape& shape, DType dtype = DType::F64,
                     Device device = Device::CPU);
  static Tensor from(const std::vector<int32_t>& values, const Shape& shape, Device device = Device::CPU);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int ndim() const { return static_cast<int>(shape().size()); }
  int64_t dim(int axis) const;  // negative axes count from the end
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }

  // Raw pointers (any device). data<T>() checks that T matches the dtype.
  void* raw();
  const void* raw() const;
  template <class T>
  T* data();
  template <class T>
  const T* data() const;

  // Host copies of the values, converted to double / float (I32 converts exactly).
  std::vector<double> to_doubles() const;
  std::vector<float> to_floats() const;
  double item() const;  // the one value of a 1-element tensor

  Tensor to(Device device) const;     // a copy on that device (this tensor if already there); no grad
  Tensor to(DType dtype) const;       // a converted copy (this tensor if already that dtype); no grad
  Tensor clone() const;               // a copy of the data; no grad
  void copy_from(const Tensor& src);  // overwrite values in place (same shape; any dtype/device)

  // Autodiff.
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on = true);  // only on leaves
  bool is_leaf() const;
  Tensor grad() const;                      // accumulated gradient of a leaf (undefined until a backward reaches it)
  void zero_grad();                         // drop the accumulated gradient
  void backward() const;                    // this must hold one element: seeds with 1
  void backward(const Tensor& seed) const;  // seed has this tensor's shape
  Tensor detach() const;                    // shares data, no graph

  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  DType dtype = DType::F32;
  // Autodiff: a leaf that requires grad accumulates into `grad`; a computed tensor has `grad_fn`.
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;
  Tensor grad;
};

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::F32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::F64;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::I32;
}
struct bf16;  // engine/bf16.h
template <>
constexpr DType dtype_of<bf16>() {
  return DType::BF16;
}

template <class T>
T* Tensor::data() {
  if (dtype() != dtype_of<T>())
    throw Error(std::string("Tensor::data: tensor is ") + dtype_name(dtype()) + ", asked for " +
                dtype_name(dtype_of<T>()));
  return static_cast<T*>(raw());
}
template <class T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}

}  // namespace lasgrad
