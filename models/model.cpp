#include "models/model.h"

namespace lasgrad {

static std::shared_ptr<Norm> make_norm(const ModelConfig& c) {
  if (c.norm == NormKind::Layer) return std::make_shared<LayerNorm>(c.width, c.dtype, c.norm_eps);
  return std::make_shared<BatchNorm>(c.width, c.dtype, c.norm_eps, c.bn_momentum);
}

Block::Block(const ModelConfig& c, std::shared_ptr<SeedCounter> seeds, Rng& rng) : pre_(c.prenorm) {
  norm1 = make_norm(c);
  attn = std::make_shared<MultiHeadAttention>(c.width, c.attention, rng, c.dtype);
  norm2 = make_norm(c);
  ffn = std::make_shared<FeedForward>(c.width, c.expand, c.dropout, seeds, rng, c.dtype);
  drop = std::make_shared<Dropout>(c.dropout, seeds);
  add_child("norm1", norm1);
  add_child("attn", attn);
  add_child("norm2", norm2);
  add_child("ffn", ffn);
  add_child("drop", drop);
}

// x [B, L, d] -> [B, L, d].
Tensor Block::forward(const Tensor& x, const Tensor& lengths, Tensor* weights) {
  if (pre_) {
    Tensor h = add(x, drop->forward(attn->forward(norm1->forward(x), lengths, weights)));
    return add(h, drop->forward(ffn->forward(norm2->forward(h))));
  }
  Tensor h = norm1->forward(add(x, drop->forward(attn->forward(x, lengths, weights))));
  return norm2->forward(add(h, drop->forward(ffn->forward(h))));
}

Encoder::Encoder(const ModelConfig& c, std::shared_ptr<SeedCounter> seeds, Rng& rng) : c_(c) {
  if (c.pixels) embed = std::make_shared<Linear>(1, c.width, rng, c.dtype);
  else embed = std::make_shared<Embedding>(c.vocab, c.width, rng, c.dtype);
  add_child("embed", embed);
  if (c.positions) {
    positions = std::make_shared<SinusoidalPositions>(c.width);
    add_child("positions", positions);
  }
  drop = std::make_shared<Dropout>(c.dropout, seeds);
  add_child("drop", drop);
  for (int64_t i = 0; i < c.layers; ++i) {
    blocks.push_back(std::make_shared<Block>(c, seeds, rng));
    add_child("blocks." + std::to_string(i), blocks.back());
  }
  if (c.prenorm) {
    norm = make_norm(c);
    add_child("norm", norm);
  }
}

// x [B, L] -> [B, d].
Tensor Encoder::forward(const Tensor& x, const Tensor& lengths, std::vector<Tensor>* maps) {
  if (x.ndim() != 2) throw Error("Encoder: input must be [B, L], got " + shape_str(x.shape()));
  const int64_t B = x.dim(0), L = x.dim(1);
  Tensor h;
  if (c_.pixels) {
    if (x.dtype() == DType::I32) throw Error("Encoder: pixel input must be floating, got int32");
    h = static_cast<Linear&>(*embed).forward(reshape(x.to(c_.dtype), {B, L, 1}));
  } else {
    h = static_cast<Embedding&>(*embed).forward(x);
  }
  if (positions) h = positions->forward(h);
  h = drop->forward(h);
  for (auto& block : blocks) {
    Tensor w;
    h = block->forward(h, lengths, maps ? &w : nullptr);
    if (maps) maps->push_back(w);
  }
  if (norm) h = norm->forward(h);
  // Mean over the valid positions: weights [B, L, 1] = 1/len_b where l < len_b.
  std::vector<double> len = lengths.defined() ? lengths.to_doubles() : std::vector<double>(B, static_cast<double>(L));
  std::vector<double> w(static_cast<size_t>(B * L), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < std::min<int64_t>(L, static_cast<int64_t>(len[b])); ++l) w[b * L + l] = 1.0 / len[b];
  return sum(mul(h, Tensor::from(w, {B, L, 1}, c_.dtype, h.device())), {1});
}

Model::Model(const ModelConfig& c) : c_(c), seeds_(std::make_shared<SeedCounter>()), rng_(c.seed) {
  seeds_->seed = mix64(c.seed + 1);
  c_.attention.max_len = c.max_len;  // one source of truth for the task length
  encoder = std::make_shared<Encoder>(c_, seeds_, rng_);
  add_child("encoder", encoder);
}

std::vector<Tensor> Model::attention_maps(const Tensor& x, const Tensor& lengths) {
  if (x.ndim() != 2 || x.dim(0) != 1)
    throw Error("attention_maps: expects one example [1, L], got " + shape_str(x.shape()));
  NoGradGuard no_grad;
  std::vector<Tensor> maps;
  encoder->forward(x, lengths, &maps);
  for (Tensor& m : maps) m = reshape(m, {m.dim(1), m.dim(2), m.dim(3)});
  return maps;
}

SequenceClassifier::SequenceClassifier(const ModelConfig& c) : Model(c) {
  head = std::make_shared<Linear>(c.width, c.classes, rng_, c.dtype);
  add_child("head", head);
}

Tensor SequenceClassifier::forward(const ModelInput& in) { return head->forward(encoder->forward(in.x, in.lengths)); }

RetrievalModel::RetrievalModel(const ModelConfig& c) : Model(c) {
  mlp1 = std::make_shared<Linear>(4 * c.width, c.width, rng_, c.dtype);
  mlp2 = std::make_shared<Linear>(c.width, 2, rng_, c.dtype);
  add_child("mlp1", mlp1);
  add_child("mlp2", mlp2);
}

// Both documents through the one encoder -> [x1, x2, x1*x2, x1-x2] [B, 4d] -> [B, 2].
Tensor RetrievalModel::forward(const ModelInput& in) {
  if (!in.x2.defined()) throw Error("RetrievalModel: the input has no second document (x2)");
  Tensor x1 = encoder->forward(in.x, in.lengths), x2 = encoder->forward(in.x2, in.lengths2);
  Tensor joined = concat({x1, x2, mul(x1, x2), sub(x1, x2)}, 1);
  return mlp2->forward(gelu(mlp1->forward(joined)));
}

std::shared_ptr<Model> make_model(const ModelConfig& c) {
  if (c.width < 1 || c.layers < 0 || c.expand < 1 || c.classes < 1)
    throw Error("make_model: width, expand and classes must be >= 1 and layers >= 0");
  if (!c.pixels && c.vocab < 1) throw Error("make_model: token input needs vocab >= 1");
  if (c.retrieval && c.pixels) throw Error("make_model: the retrieval model takes token documents");
  if (c.precision == Precision::Bf16 && c.dtype != DType::F32)
    throw Error(std::string("make_model: precision bf16 keeps float32 master weights; the dtype is ") +
                dtype_name(c.dtype));
  std::shared_ptr<Model> m;
  if (c.retrieval) m = std::make_shared<RetrievalModel>(c);
  else m = std::make_shared<SequenceClassifier>(c);
  m->set_precision(c.precision);
  return m;
}

}  // namespace lasgrad
