// Reverse-mode autodiff, define-by-run.
//
// Every op that has an input requiring grad records a Node on its output: the op's name, the node
// that produced each input (or an AccumulateGrad node for a leaf), the input shapes, and the backward
// as a closure that owns the tensors it saved. Tensor::backward() walks the graph iteratively in
// reverse topological order, sums the gradients that reach a node from several consumers, adds (+=)
// into leaves' .grad, and releases each node (its closure and saved tensors) once it has run.
//
// Writing an op's backward (see engine/ops_*.cpp):
//   if (needs_grad({a, b}))
//     record("mul", out, {a, b}, [a, b](const Tensor& g) -> Grads { return {mul(g, b), mul(g, a)}; });
// Save an output with out.detach(): capturing `out` itself would make the node own its own output.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace lasgrad {

// One gradient per input, in input order; an undefined Tensor means "no gradient for this input".
using Grads = std::vector<Tensor>;
using BackwardFn = std::function<Grads(const Tensor& grad_out)>;

struct Node {
  const char* op = "";
  std::vector<std::shared_ptr<Node>> next;  // producer of each input; nullptr where no grad flows
  std::vector<Shape> input_shapes;          // to check each returned gradient's shape
  BackwardFn backward;                      // empty once released
  bool released = false;
};

// Gradient mode for this thread; NoGradGuard turns recording off for its scope.
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and some input requires grad: the op must then call record().
bool needs_grad(const std::vector<Tensor>& inputs);

// Attaches a node computing `fn` to `out` (which becomes a non-leaf requiring grad).
void record(const char* op, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn);

// Runs the backward pass from `root` seeded with `seed` (same shape as root).
void run_backward(const Tensor& root, const Tensor& seed);

}  // namespace lasgrad
