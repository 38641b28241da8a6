// build_model: the run settings' model with the task's facts (models/model.h's ModelConfig), and a host batch
// mapped onto ModelInput.
#include "train/task_model.h"

#include "models/model.h"

namespace lasgrad::train {

ModelConfig model_config(const RunSettings& s, const data::TaskInfo& info) {
  ModelConfig m;
  static_cast<ModelSettings&>(m) = s.model;
  m.pixels = info.pixels;
  m.vocab = info.pixels ? 0 : info.vocab_size;
  m.classes = info.num_classes;
  m.max_len = sequence_length(s);
  m.retrieval = info.pair;
  m.seed = static_cast<uint64_t>(s.train.seed);
  return m;
}

class LasTaskModel : public TaskModel {
 public:
  // Moves the model to `device`, where its inputs are then made.
  LasTaskModel(std::shared_ptr<Model> m, Device device) : m_(std::move(m)), device_(device) { m_->to(device_); }
  Module& module() override { return *m_; }

  Tensor logits(const data::Batch& b) override { return m_->forward(input(b, b.size)); }

  uint64_t rng_state() const override { return m_->dropout_seeds().count; }
  void set_rng_state(uint64_t s) override { m_->dropout_seeds().count = s; }

  std::vector<Tensor> attention_maps(const data::Batch& b) override {
    ModelInput in = input(b, 1);
    bool was_training = m_->training();
    m_->eval();
    std::vector<Tensor> maps = m_->attention_maps(in.x, in.lengths);
    m_->train(was_training);
    return maps;
  }

  std::vector<std::vector<double>> alphas() const override {
    std::vector<std::vector<double>> out;
    for (const auto& block : m_->encoder->blocks) out.push_back(block->attn->alphas());
    return out;
  }

 private:
  // The first `rows` rows of b as tensors on the model's device: x [rows, T] (I32 ids or F32 pixels),
  // lengths [rows].
  ModelInput input(const data::Batch& b, int64_t rows) const {
    const int64_t T = b.length;
    const size_t n = static_cast<size_t>(rows * T);
    auto ids = [&](const std::vector<int32_t>& v) {
      return Tensor::from(std::vector<int32_t>(v.begin(), v.begin() + n), {rows, T}, device_);
    };
    auto lens = [&](const std::vector<int32_t>& v) {
      return Tensor::from(std::vector<int32_t>(v.begin(), v.begin() + rows), {rows}, device_);
    };
    ModelInput in;
    in.x = b.pixels.empty() ? ids(b.tokens)
                            : Tensor::from(std::vector<float>(b.pixels.begin(), b.pixels.begin() + n), {rows, T},
                                           DType::F32, device_);
    in.lengths = lens(b.lengths);
    if (!b.tokens2.empty()) {
      in.x2 = ids(b.tokens2);
      in.lengths2 = lens(b.lengths2);
    }
    return in;
  }

  std::shared_ptr<Model> m_;
  Device device_;
};

std::unique_ptr<TaskModel> build_model(const RunSettings& settings, const data::TaskInfo& info) {
  const Device device = run_device(settings);  // before building: a device that cannot be used fails fast
  return std::make_unique<LasTaskModel>(make_model(model_config(settings, info)), device);
}

}  // namespace lasgrad::train
