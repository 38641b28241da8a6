// Agreement with PyTorch: tests/reference/make_fixture.py built the same classifier in PyTorch (LaS
// written literally from the spec) and saved inputs, weights, logits, loss and every parameter
// gradient. Here lasgrad (float32, fused kernels) loads the weights and must agree: relative error
// max|got - want| / max|want| <= 1e-4 for the logits, the loss and each gradient.
#include <cmath>

#include "engine/safetensors.h"
#include "models/model.h"
#include "tests/engine/helpers.h"

using namespace lasgrad;

namespace {

double rel_err(const Tensor& got, const Tensor& want) {
  std::vector<double> g = got.to_doubles(), w = want.to_doubles();
  REQUIRE(g.size() == w.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (!std::isfinite(w[i]) || !std::isfinite(g[i])) return INFINITY;
    num = std::max(num, std::abs(g[i] - w[i]));
    den = std::max(den, std::abs(w[i]));
  }
  return num / std::max(den, 1e-30);
}

void check_fixture(const std::string& kind, bool fused) {
  SafeTensors f = load_safetensors(std::string(LASGRAD_FIXTURES) + "/classifier_" + kind + ".safetensors");
  auto meta = [&](const char* k) { return std::stoll(f.metadata.at(k)); };
  ModelConfig c;
  c.vocab = meta("vocab");
  c.classes = meta("classes");
  c.width = meta("d_model");
  c.layers = meta("layers");
  c.expand = meta("expand");
  c.max_len = meta("L");
  c.prenorm = meta("pre_norm");
  c.norm = NormKind::Layer;  // the fixture's model (tests/reference)
  c.attention.kind = parse_name(kAttentionKinds, f.metadata.at("kind"), "kind");
  c.attention.causal = meta("causal");
  c.attention.heads = meta("heads");
  c.attention.B = std::stod(f.metadata.at("las_b"));
  c.attention.P = meta("pool");
  c.attention.C = meta("chunk");
  c.attention.fused = fused;
  auto m = make_model(c);
  for (auto& [name, p] : m->named_parameters()) p.copy_from(f.at("param." + name));

  Tensor logits = m->forward({.x = f.at("input.x"), .lengths = f.at("input.lengths")});
  Tensor loss = cross_entropy(logits, f.at("input.labels"));
  loss.backward();
  CHECK(rel_err(logits, f.at("out.logits")) <= 1e-4);
  CHECK(rel_err(loss, f.at("out.loss")) <= 1e-4);
  for (auto& [name, p] : m->named_parameters()) {
    CAPTURE(name);
    REQUIRE(p.grad().defined());
    CHECK(rel_err(p.grad(), f.at("grad." + name)) <= 1e-4);
  }
}

}  // namespace

TEST_CASE("lasgrad agrees with the PyTorch model: forward and every gradient, each attention kind") {
  for (const char* kind : {"softmax", "las", "las-chunk"})
    for (bool fused : {true, false}) {
      CAPTURE(kind);
      CAPTURE(fused);
      check_fixture(kind, fused);
    }
}
