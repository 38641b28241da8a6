// The models of the paper's experiments (docs/las-attention.md §4): a transformer sequence
// classifier and the retrieval model built on the same encoder. Everything a run can change is in
// ModelConfig, a plain struct with documented defaults; make_model() builds either model from it.
//
// Parameter names (for the optimizer's groups and checkpoints):
//   encoder.embed.weight (token input) | encoder.embed.weight/.bias (pixel input: Linear 1 -> d)
//   encoder.blocks.N.{norm1, attn.qkv, attn.out, norm2, ffn.fc1, ffn.fc2}.{weight, bias}
//   encoder.norm.{weight, bias} (pre-norm only); BatchNorm buffers ...running_mean/running_var
//   classifier: head.{weight, bias};  retrieval: mlp1.{weight, bias}, mlp2.{weight, bias}
#pragma once
#include <memory>
#include <vector>

#include "layers/layers.h"
#include "layers/multihead_attention.h"

namespace lasgrad {

enum class NormKind { Layer, Batch };
inline constexpr EnumName<NormKind> kNormNames[] = {{NormKind::Layer, "layer"}, {NormKind::Batch, "batch"}};
inline constexpr EnumName<bool> kPositionNames[] = {{true, "sinusoidal"}, {false, "none"}};  // setting pos

// What a run chooses of the model. The member initialisers are the run settings' defaults (the paper's
// model; their keys: train/settings.cpp).
struct ModelSettings {
  int64_t layers = 6;   // blocks
  int64_t width = 256;  // d, the model width
  int64_t expand = 4;   // feed-forward width = expand * width
  NormKind norm = NormKind::Batch;
  bool prenorm = false;         // pre-norm adds one final norm after the last block
  bool positions = true;        // (setting pos) sinusoidal absolute positions added to the input; false = none
  double dropout = 0.0;         // the paper's value
  AttentionSettings attention;  // its max_len is set from ModelConfig::max_len
  Precision precision = Precision::Fp32;  // bf16 needs dtype F32 (the master weights)
};

// A model: the run's choices and what the task fixes.
struct ModelConfig : ModelSettings {
  // Task.
  bool pixels = false;  // input: false = token ids (embedding), true = pixel values (Linear 1 -> d)
  int64_t vocab = 256;  // token vocabulary (token input)
  int64_t classes = 10;
  int64_t max_len = 1024;  // the task length (sets LaS's default alpha_min = 1 / max_len)
  bool retrieval = false;  // two documents through one encoder, [x1, x2, x1*x2, x1-x2] -> MLP -> 2 classes
  // Numbers.
  double norm_eps = 1e-5;
  double bn_momentum = 0.1;
  DType dtype = DType::F32;
  uint64_t seed = 1;  // initialisation and dropout seeds
};

// One batch: x [B, L] token ids (int32) or pixel values (float); lengths int32 [B], the valid positions
// of each example (undefined: all L); x2, lengths2 the second document of a retrieval pair (else undefined).
struct ModelInput {
  Tensor x{}, lengths{}, x2{}, lengths2{};
};

// x [B, L, d] -> x + attn(norm1(x)) -> + ffn(norm2(.)) (pre-norm), or norm after each residual (post-norm).
class Block : public Module {
 public:
  Block(const ModelConfig& c, std::shared_ptr<SeedCounter> seeds, Rng& rng);
  Tensor forward(const Tensor& x, const Tensor& lengths, Tensor* weights = nullptr);
  std::shared_ptr<Norm> norm1, norm2;
  std::shared_ptr<MultiHeadAttention> attn;
  std::shared_ptr<FeedForward> ffn;
  std::shared_ptr<Dropout> drop;

 private:
  bool pre_;
};

// Input map, positions, blocks, final norm, then the mean over valid positions: -> [B, d].
class Encoder : public Module {
 public:
  Encoder(const ModelConfig& c, std::shared_ptr<SeedCounter> seeds, Rng& rng);
  // x [B, L] (ids or pixel values), lengths I32 [B] or undefined -> pooled [B, d]. With `maps`, each
  // block's attention matrices [B, H, L, L] are appended (see Model::attention_maps).
  Tensor forward(const Tensor& x, const Tensor& lengths, std::vector<Tensor>* maps = nullptr);
  std::shared_ptr<Module> embed;                   // Embedding or Linear
  std::shared_ptr<SinusoidalPositions> positions;  // undefined when c.positions is false
  std::vector<std::shared_ptr<Block>> blocks;
  std::shared_ptr<Norm> norm;  // pre-norm only
  std::shared_ptr<Dropout> drop;

 private:
  ModelConfig c_;
};

class Model : public Module {
 public:
  virtual Tensor forward(const ModelInput& in) = 0;  // -> logits [B, classes]
  // For one example x [1, L] (lengths [1] or undefined): each block's per-head attention matrix after
  // decay, softmax and smoothing, as float [H, L, L] tensors (no grad), in block order. Runs in the
  // current train/eval mode without recording a graph.
  std::vector<Tensor> attention_maps(const Tensor& x, const Tensor& lengths = Tensor());
  const ModelConfig& config() const { return c_; }
  // The dropout-seed counter: a checkpoint saves and restores it so a resumed run draws the same masks.
  SeedCounter& dropout_seeds() { return *seeds_; }
  std::shared_ptr<Encoder> encoder;

 protected:
  explicit Model(const ModelConfig& c);
  ModelConfig c_;
  std::shared_ptr<SeedCounter> seeds_;
  Rng rng_;
};

class SequenceClassifier : public Model {
 public:
  explicit SequenceClassifier(const ModelConfig& c);
  Tensor forward(const ModelInput& in) override;
  std::shared_ptr<Linear> head;
};

class RetrievalModel : public Model {
 public:
  explicit RetrievalModel(const ModelConfig& c);
  Tensor forward(const ModelInput& in) override;  // -> [B, 2]
  std::shared_ptr<Linear> mlp1, mlp2;
};

// The classifier, or the retrieval model when c.retrieval, computing in c.precision. Throws on an
// inconsistent config.
std::shared_ptr<Model> make_model(const ModelConfig& c);

}  // namespace lasgrad
