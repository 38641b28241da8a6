// Module: the base of every layer and model. It owns named parameters (leaves that require grad),
// named buffers (state that is saved but not trained, e.g. BatchNorm running statistics) and named
// children, and a train/eval flag and a precision that propagate to the children.
//
// Names are dotted paths from the root, e.g. "blocks.3.attn.qkv.weight"; the optimizer (weight-decay
// groups) and checkpoints address parameters by these names.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace lasgrad {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// How a module computes its products (setting precision; docs/training.md, "Precision"). Fp32: in its
// parameters' dtype. Bf16: Linear and attention round their product operands to bfloat16 and
// accumulate in float32; parameters, and everything else, stay float32.
enum class Precision { Fp32, Bf16 };
inline constexpr EnumName<Precision> kPrecisionNames[] = {{Precision::Fp32, "fp32"}, {Precision::Bf16, "bf16"}};

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  NamedTensors named_parameters() const;  // this module's, then each child's, in registration order
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  int64_t parameter_count() const;

  void train(bool on = true);  // this module and every child
  void eval() { train(false); }
  bool training() const { return training_; }
  void set_precision(Precision p);  // this module and every child
  Precision precision() const { return precision_; }

  // Moves every parameter and buffer to `device` in place: handles held elsewhere stay valid.
  void to(Device device);
  void zero_grad();

  // Calls fn on this module, then on each child's tree in registration order.
  void apply(const std::function<void(Module&)>& fn);

 protected:
  // Registers a parameter (made a leaf that requires grad) and returns a handle to it (handles share the tensor).
  Tensor add_parameter(const std::string& name, Tensor value);
  Tensor add_buffer(const std::string& name, Tensor value);
  template <class M>
  M& add_child(const std::string& name, std::shared_ptr<M> child) {
    children_.emplace_back(name, child);
    return *child;
  }

 private:
  void collect(const std::string& prefix, bool parameters, NamedTensors& out) const;

  NamedTensors parameters_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  Precision precision_ = Precision::Fp32;
};

}  // namespace lasgrad
