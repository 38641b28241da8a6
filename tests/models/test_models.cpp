// Models: parameter names, every configuration builds and runs, mean pooling ignores padding, the
// attention maps, and finite-difference gradient checks of whole two-block models (float64) of each
// attention kind, pre- and post-norm, LayerNorm and BatchNorm, the retrieval model and pixel input.
#include "models/model.h"
#include "tests/engine/helpers.h"

using namespace lasgrad;
using In = std::vector<Tensor>;

namespace {

ModelConfig tiny(AttentionKind kind) {
  ModelConfig c;
  c.vocab = 5;
  c.classes = 3;
  c.max_len = 6;
  c.width = 4;
  c.layers = 2;
  c.expand = 2;
  c.norm = NormKind::Layer;
  c.prenorm = true;
  c.dtype = DType::F64;
  c.seed = 11;
  c.attention.kind = kind;
  c.attention.heads = 2;
  c.attention.B = 0.5;
  c.attention.P = 3;
  c.attention.C = 4;
  return c;
}

ModelInput tokens() {
  return {.x = Tensor::from(std::vector<int32_t>{1, 2, 3, 4, 0, 1, 4, 3, 2, 0, 0, 0}, {2, 6}),
          .lengths = Tensor::from(std::vector<int32_t>{6, 3}, {2})};
}

void check_model(const ModelConfig& c, const ModelInput& in) {
  auto m = make_model(c);
  CHECK_GRADIENTS([&](const In&) { return m->forward(in); }, m->parameters());
}

}  // namespace

TEST_CASE("parameter names follow the module tree") {
  ModelConfig c = tiny(AttentionKind::Las);
  c.norm = NormKind::Batch;
  auto m = make_model(c);
  std::vector<std::string> n;
  for (auto& [name, t] : m->named_parameters()) n.push_back(name);
  CHECK(n.front() == "encoder.embed.weight");
  CHECK(std::find(n.begin(), n.end(), "encoder.blocks.1.attn.qkv.weight") != n.end());
  CHECK(std::find(n.begin(), n.end(), "encoder.blocks.0.ffn.fc2.bias") != n.end());
  CHECK(std::find(n.begin(), n.end(), "encoder.norm.weight") != n.end());
  CHECK(n.back() == "head.bias");
  CHECK(m->named_buffers().front().first == "encoder.blocks.0.norm1.running_mean");
  c.prenorm = false;
  auto post = make_model(c);
  for (auto& [name, t] : post->named_parameters()) CHECK(name.rfind("encoder.norm.", 0) != 0);
}

TEST_CASE("whole two-block models: gradient check per attention kind (pre-norm, LayerNorm)") {
  for (AttentionKind kind : {AttentionKind::Softmax, AttentionKind::Las, AttentionKind::LasChunk}) {
    CAPTURE(name_of(kAttentionKinds, kind));
    check_model(tiny(kind), tokens());
  }
}

TEST_CASE("whole models: post-norm BatchNorm, bidirectional, pixel input, retrieval") {
  ModelConfig c = tiny(AttentionKind::Las);
  c.norm = NormKind::Batch;
  c.prenorm = false;
  check_model(c, tokens());
  c = tiny(AttentionKind::LasChunk);
  c.attention.causal = false;
  c.positions = false;
  c.pixels = true;
  check_model(c,
              {.x = Tensor::from(std::vector<double>{.1, .5, -.3, .9, 0, .2, .7, -.1, .4, 0, 0, 0}, {2, 6}, DType::F32),
               .lengths = Tensor::from(std::vector<int32_t>{6, 4}, {2})});
  c = tiny(AttentionKind::Las);
  c.retrieval = true;
  ModelInput in = tokens();
  in.x2 = Tensor::from(std::vector<int32_t>{4, 4, 1, 0, 0, 0, 2, 3, 1, 1, 3, 2}, {2, 6});
  in.lengths2 = Tensor::from(std::vector<int32_t>{3, 6}, {2});
  check_model(c, in);
  auto m = make_model(c);
  CHECK(m->forward(in).shape() == Shape{2, 2});
}

TEST_CASE("mean pooling ignores padded positions (causal model: padding cannot reach valid tokens)") {
  ModelConfig c = tiny(AttentionKind::Las);
  c.attention.P = 1;  // pooling would look one position ahead
  auto m = make_model(c);
  ModelInput a = tokens(), b = tokens();
  b.x = Tensor::from(std::vector<int32_t>{1, 2, 3, 4, 0, 1, 4, 3, 2, 4, 4, 1}, {2, 6});  // other padding
  lasgrad::test::check_close(m->forward(a).to_doubles(), m->forward(b).to_doubles(), 1e-12);
}

TEST_CASE("attention maps: one [H, L, L] per block, rows of the smoothed softmax") {
  ModelConfig c = tiny(AttentionKind::LasChunk);
  auto m = make_model(c);
  std::vector<Tensor> maps = m->attention_maps(Tensor::from(std::vector<int32_t>{1, 2, 3, 4, 0, 1}, {1, 6}));
  REQUIRE(maps.size() == 2);
  CHECK(maps[0].shape() == Shape{2, 6, 6});
  CHECK_FALSE(maps[0].requires_grad());
  std::vector<double> w = maps[1].to_doubles();
  CHECK(w[0 * 6 + 4] == 0.0);  // chunk 4: no weight across the boundary
  double row = 0;
  for (int j = 0; j < 6; ++j) row += w[2 * 6 + j];
  CHECK(row <= 1.0 + 1e-9);  // pooling can push up to P/2 columns of weight out of the chunk edge
  CHECK(row > 0.5);
  CHECK_THROWS_AS(m->attention_maps(tokens().x), Error);
}

TEST_CASE("make_model rejects inconsistent configs") {
  ModelConfig c = tiny(AttentionKind::Las);
  c.width = 5;
  CHECK_THROWS_AS(make_model(c), Error);
  c = tiny(AttentionKind::Las);
  c.retrieval = true;
  c.pixels = true;
  CHECK_THROWS_AS(make_model(c), Error);
  c = tiny(AttentionKind::LasChunk);
  c.attention.C = 0;
  CHECK_THROWS_AS(make_model(c), Error);
  c = tiny(AttentionKind::Las);
  c.precision = Precision::Bf16;
  c.dtype = DType::F64;  // bf16 rounds from float32 masters
  CHECK_THROWS_WITH_AS(make_model(c), doctest::Contains("keeps float32 master weights"), Error);
  c.dtype = DType::F32;
  CHECK(make_model(c)->encoder->blocks[0]->attn->precision() == Precision::Bf16);
}
