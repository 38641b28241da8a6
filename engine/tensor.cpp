#include "engine/tensor.h"

#include <cstdio>
#include <cstring>
#include <new>

#include "engine/autograd.h"
#include "engine/backend.h"

namespace lasgrad {

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::I32: return "int32";
    case DType::BF16: return "bfloat16";
  }
  return "?";
}

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Storage::Storage(size_t bytes, Device device) : bytes(bytes), device(device) {
  if (!bytes) return;  // an empty tensor needs no backend: a CPU-only build can hold an empty CUDA one
  owner = &backend(device);
  ptr = owner->allocate(bytes);
}

Storage::~Storage() {
  if (ptr) owner->deallocate(ptr, bytes);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape)
    if (d < 0) throw Error("Tensor::empty: negative size in shape " + shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  const size_t bytes = static_cast<size_t>(numel_of(shape)) * dtype_size(dtype);
  try {
    impl->storage = std::make_shared<Storage>(bytes, device);
  } catch (const std::bad_alloc&) {
    char mib[32];
    std::snprintf(mib, sizeof mib, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
    throw Error("out of memory: cannot allocate a " + std::string(dtype_name(dtype)) + " tensor " + shape_str(shape) +
                " (" + mib + ") on " + device_name(device));
  }
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  backend(device).fill(t, value);
  return t;
}

// Builds a host tensor of the source's own dtype, then converts and moves it.
template <class T>
static Tensor from_host(const std::vector<T>& values, const Shape& shape, DType dtype, Device device) {
  if (static_cast<int64_t>(values.size()) != numel_of(shape))
    throw Error("Tensor::from: " + std::to_string(values.size()) + " values for shape " + shape_str(shape));
  Tensor host = Tensor::empty(shape, dtype_of<T>(), Device::CPU);
  if (!values.empty()) std::memcpy(host.raw(), values.data(), values.size() * sizeof(T));
  return host.to(dtype).to(device);
}

Tensor Tensor::from(const std::vector<float>& v, const Shape& s, DType dt, Device dev) {
  return from_host(v, s, dt, dev);
}
Tensor Tensor::from(const std::vector<double>& v, const Shape& s, DType dt, Device dev) {
  return from_host(v, s, dt, dev);
}
Tensor Tensor::from(const std::vector<int32_t>& v, const Shape& s, Device dev) {
  return from_host(v, s, DType::I32, dev);
}

static const TensorImpl& checked(const std::shared_ptr<TensorImpl>& impl) {
  if (!impl) throw Error("use of an undefined Tensor");
  return *impl;
}

const Shape& Tensor::shape() const { return checked(impl_).shape; }
DType Tensor::dtype() const { return checked(impl_).dtype; }
Device Tensor::device() const { return checked(impl_).storage->device; }
int64_t Tensor::numel() const { return numel_of(shape()); }
void* Tensor::raw() { return checked(impl_).storage->ptr; }
const void* Tensor::raw() const { return checked(impl_).storage->ptr; }

int64_t Tensor::dim(int axis) const {
  int n = ndim();
  int a = axis < 0 ? axis + n : axis;
  if (a < 0 || a >= n)
    throw Error("Tensor::dim: axis " + std::to_string(axis) + " out of range for shape " + shape_str(shape()));
  return shape()[a];
}

std::vector<double> Tensor::to_doubles() const {
  Tensor host = to(DType::F64).to(Device::CPU);
  const double* p = host.data<double>();
  return std::vector<double>(p, p + host.numel());
}

std::vector<float> Tensor::to_floats() const {
  Tensor host = to(DType::F32).to(Device::CPU);
  const float* p = host.data<float>();
  return std::vector<float>(p, p + host.numel());
}

double Tensor::item() const {
  if (numel() != 1) throw Error("Tensor::item: tensor of shape " + shape_str(shape()) + " has not one element");
  return to_doubles()[0];
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor out = empty(shape(), dtype(), device);
  if (device == Device::CPU) backend(this->device()).copy_to_host(out.raw(), raw(), nbytes());
  else if (this->device() == Device::CPU) backend(device).copy_from_host(out.raw(), raw(), nbytes());
  else
    throw Error(std::string("Tensor::to: no copy path from ") + device_name(this->device()) + " to " +
                device_name(device));
  return out;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == this->dtype()) return *this;
  Tensor out = empty(shape(), dtype, device());
  backend(device()).convert(*this, out);
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  backend(device()).copy(out.raw(), raw(), nbytes());
  return out;
}

void Tensor::copy_from(const Tensor& src) {
  if (src.shape() != shape())
    throw Error("Tensor::copy_from: source " + shape_str(src.shape()) + " into " + shape_str(shape()));
  Tensor s = src.to(device()).to(dtype());
  backend(device()).copy(raw(), s.raw(), nbytes());
}

bool Tensor::requires_grad() const { return checked(impl_).requires_grad; }
bool Tensor::is_leaf() const { return checked(impl_).grad_fn == nullptr; }

Tensor& Tensor::set_requires_grad(bool on) {
  if (!is_leaf()) throw Error("set_requires_grad: only a leaf tensor's flag can be set (this one was computed)");
  if (on && dtype() == DType::I32) throw Error("set_requires_grad: an int32 tensor cannot require grad");
  impl_->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return checked(impl_).grad; }
void Tensor::zero_grad() {
  checked(impl_);
  impl_->grad = Tensor();
}

void Tensor::backward() const {
  if (numel() != 1)
    throw Error("backward: the tensor has shape " + shape_str(shape()) +
                "; backward() without a seed needs a one-element tensor, pass a seed gradient instead");
  run_backward(*this, full(shape(), 1.0, dtype(), device()));
}

void Tensor::backward(const Tensor& seed) const { run_backward(*this, seed); }

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = checked(impl_).storage;
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

}  // namespace lasgrad
