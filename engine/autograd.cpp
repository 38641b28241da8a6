#include "engine/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "engine/backend.h"
#include "engine/ops.h"

namespace lasgrad {

static thread_local bool g_grad_enabled = true;

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

// leaf.grad += g. The first contribution is copied so that later in-place sums never touch a tensor
// that the backward of some op handed out (it may alias the seed or another gradient).
static void accumulate(TensorImpl& leaf, const Tensor& g) {
  if (!leaf.grad.defined()) {
    leaf.grad = g.clone();
  } else {
    backend(g.device()).binary(BinaryOp::Add, leaf.grad, g, leaf.grad);
  }
}

// A leaf's entry in the graph: a node without inputs whose backward adds into the leaf's .grad.
static std::shared_ptr<Node> accumulate_node(const Tensor& leaf) {
  auto node = std::make_shared<Node>();
  node->op = "accumulate_grad";
  std::shared_ptr<TensorImpl> impl = leaf.impl();
  node->backward = [impl](const Tensor& g) -> Grads {
    accumulate(*impl, g);
    return {};
  };
  return node;
}

void record(const char* op, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn) {
  auto node = std::make_shared<Node>();
  node->op = op;
  node->backward = std::move(fn);
  for (const Tensor& t : inputs) {
    bool flows = t.defined() && t.requires_grad();
    node->input_shapes.push_back(t.defined() ? t.shape() : Shape{});
    node->next.push_back(!flows ? nullptr : t.is_leaf() ? accumulate_node(t) : t.impl()->grad_fn);
  }
  out.impl()->requires_grad = true;
  out.impl()->grad_fn = std::move(node);
}

static void check_not_released(const Node& node) {
  if (node.released)
    throw Error(std::string("backward: the graph through '") + node.op +
                "' was already freed by an earlier backward(); recompute the forward pass to backpropagate again");
}

void run_backward(const Tensor& root, const Tensor& seed) {
  if (!root.requires_grad())
    throw Error(
        "backward: the tensor does not require grad (no input of its computation requires grad, "
        "or it was computed under NoGradGuard)");
  if (seed.shape() != root.shape() || seed.dtype() != root.dtype() || seed.device() != root.device())
    throw Error("backward: the seed gradient is " + std::string(dtype_name(seed.dtype())) + " " +
                shape_str(seed.shape()) + " on " + device_name(seed.device()) + ", the tensor is " +
                dtype_name(root.dtype()) + " " + shape_str(root.shape()) + " on " + device_name(root.device()));
  NoGradGuard no_grad;
  if (root.is_leaf()) {
    accumulate(*root.impl(), seed);
    return;
  }

  // Count, for every node reachable from the root, how many edges lead into it (iterative walk).
  // `nodes` owns every node until the pass ends, because releasing a node drops its edges.
  Node* start = root.impl()->grad_fn.get();
  std::vector<std::shared_ptr<Node>> nodes{root.impl()->grad_fn};
  std::unordered_map<Node*, int> pending;
  std::unordered_set<Node*> seen{start};
  for (size_t k = 0; k < nodes.size(); ++k) {
    Node* n = nodes[k].get();
    check_not_released(*n);
    for (const auto& next : n->next) {
      if (!next) continue;
      ++pending[next.get()];
      if (seen.insert(next.get()).second) nodes.push_back(next);
    }
  }

  // Kahn's algorithm: a node runs once every consumer has added its contribution to the node's gradient.
  std::unordered_map<Node*, Tensor> grads{{start, seed}};
  std::vector<Node*> ready{start};
  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    Grads input_grads;
    if (auto it = grads.find(n); it != grads.end()) {
      Tensor g = std::move(it->second);
      grads.erase(it);
      input_grads = n->backward(g);
      if (!input_grads.empty() && input_grads.size() != n->next.size())
        throw Error(std::string("backward of '") + n->op + "' returned " + std::to_string(input_grads.size()) +
                    " gradients for " + std::to_string(n->next.size()) + " inputs");
    }
    for (size_t i = 0; i < n->next.size(); ++i) {
      Node* next = n->next[i].get();
      if (!next) continue;
      if (i < input_grads.size() && input_grads[i].defined()) {
        const Tensor& g = input_grads[i];
        if (g.shape() != n->input_shapes[i])
          throw Error(std::string("backward of '") + n->op + "': gradient of input " + std::to_string(i) +
                      " has shape " + shape_str(g.shape()) + ", the input has " + shape_str(n->input_shapes[i]));
        auto [slot, fresh] = grads.try_emplace(next, g);
        if (!fresh) slot->second = add(slot->second, g);
      }
      if (--pending[next] == 0) ready.push_back(next);
    }
    // Free the closure (and the tensors it saved) and the edges as soon as this node is done.
    n->backward = nullptr;
    n->next.clear();
    n->released = true;
  }
}

}  // namespace lasgrad
