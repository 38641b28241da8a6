// The op-case table (op_cases.h) in its CPU modes: every case's float64 forward against its plain-loop
// reference, its finite-difference gradient, and the bf16 mode's forward against the reference of the
// rounded values.
#include "tests/engine/op_cases.h"

#include "tests/engine/helpers.h"

using namespace lasgrad;
using namespace lasgrad::test;

TEST_CASE("op cases: the forward equals the plain-loop reference (float64, cpu)") {
  for (const OpCase& c : op_cases()) {
    CAPTURE(c.name);
    const std::vector<Tensor> in = case_inputs(c, DType::F64, Device::CPU);
    std::vector<Values> values;
    for (const Tensor& t : in) values.push_back(t.to_doubles());
    const Tensor out = c.op(in);
    const Values want = c.reference(values);
    check_entries(out, Tensor::from(want, out.shape()), 1e-12, c.name);
  }
}

TEST_CASE("op cases: the gradient equals finite differences (float64, cpu)") {
  for (const OpCase& c : op_cases()) {
    CAPTURE(c.name);
    std::vector<Tensor> in = case_inputs(c, DType::F64, Device::CPU);
    CHECK_GRADIENTS([&](const std::vector<Tensor>& x) { return c.op(x); }, in);
  }
}

TEST_CASE("op cases: bfloat16 operands give the reference of their rounded values (bf16, cpu)") {
  for (const OpCase& c : op_cases()) {
    if (!c.bf16) continue;
    CAPTURE(c.name);
    const std::vector<Tensor> in = case_inputs(c, DType::BF16, Device::CPU);
    std::vector<Values> values;
    for (const Tensor& t : in) values.push_back(t.to(DType::BF16).to_doubles());
    const Tensor out = case_op(c, in, DType::BF16);
    CHECK(out.dtype() == DType::F32);
    check_entries(out, Tensor::from(values.empty() ? Values{} : c.reference(values), out.shape()), 1e-6, c.name);
  }
}
