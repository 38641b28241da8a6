// safetensors: round trips of every dtype and odd shapes with metadata, the atomic write, and clear
// errors (naming the file and the problem) for missing, truncated and corrupt files.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <unistd.h>

#include "engine/safetensors.h"

using namespace lasgrad;

namespace {

std::string temp_path(const std::string& name) {
  return "/tmp/lasgrad_test_st_" + std::to_string(::getpid()) + "_" + name;
}

// A file of an 8-byte header length, the header, then `data`.
std::string raw_file(const std::string& name, const std::string& header, const std::string& data,
                     int64_t claimed = -1) {
  std::string path = temp_path(name);
  std::ofstream out(path, std::ios::binary);
  uint64_t n = claimed < 0 ? header.size() : static_cast<uint64_t>(claimed);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << data;
  return path;
}

void check_error(const std::string& path, const char* what) {
  CAPTURE(path);
  CHECK_THROWS_WITH_AS(load_safetensors(path), doctest::Contains(what), Error);
  CHECK_THROWS_WITH_AS(load_safetensors(path), doctest::Contains(path.c_str()), Error);
  std::remove(path.c_str());
}

}  // namespace

TEST_CASE("round trip: every dtype, a scalar, an empty tensor, metadata with escapes") {
  std::string path = temp_path("round.safetensors");
  Tensor a = Tensor::from(std::vector<float>{1.5f, -2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from(std::vector<double>{3.141592653589793}, {});
  Tensor c = Tensor::from(std::vector<int32_t>{7, -8, 2147483647}, {3});
  Tensor d = Tensor::zeros({0, 4});
  Tensor e = a.to(DType::BF16);
  std::map<std::string, std::string> meta{{"format", "pt"}, {"note", "a \"quoted\"\\ line\nnext"}};
  save_safetensors(path, {{"layer.weight", a}, {"pi", b}, {"ids", c}, {"empty", d}, {"half", e}}, meta);
  SafeTensors f = load_safetensors(path);
  REQUIRE(f.tensors.size() == 5);
  CHECK(f.tensors[0].first == "layer.weight");  // file order
  CHECK(f.metadata == meta);
  CHECK(f.at("layer.weight").dtype() == DType::F32);
  CHECK(f.at("layer.weight").shape() == Shape{2, 3});
  CHECK(f.at("layer.weight").to_doubles() == a.to_doubles());
  CHECK(f.at("pi").dtype() == DType::F64);
  CHECK(f.at("pi").shape() == Shape{});
  CHECK(f.at("pi").item() == 3.141592653589793);
  CHECK(f.at("ids").dtype() == DType::I32);
  CHECK(f.at("ids").to_doubles() == c.to_doubles());
  CHECK(f.at("empty").shape() == Shape{0, 4});
  CHECK(f.at("half").dtype() == DType::BF16);
  CHECK(f.at("half").nbytes() == 12);
  CHECK(f.at("half").to_doubles() == a.to_doubles());  // each of a's values is a bfloat16
  CHECK(f.contains("pi"));
  CHECK_FALSE(f.contains("nope"));
  CHECK_THROWS_WITH_AS(f.at("nope"), doctest::Contains("no tensor named 'nope'"), Error);
  // The data starts 8-byte aligned and no temporary file is left behind.
  std::ifstream in(path, std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  CHECK(n % 8 == 0);
  CHECK_FALSE(std::ifstream(path + ".tmp." + std::to_string(::getpid())).good());
  // Overwriting replaces the file whole.
  save_safetensors(path, {{"x", b}});
  CHECK(load_safetensors(path).tensors.size() == 1);
  std::remove(path.c_str());
}

TEST_CASE("writing refuses bad names and reports an unwritable folder") {
  Tensor a = Tensor::zeros({2});
  CHECK_THROWS_WITH_AS(save_safetensors(temp_path("dup"), {{"a", a}, {"a", a}}), doctest::Contains("duplicate"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(temp_path("meta"), {{"__metadata__", a}}), doctest::Contains("reserved"),
                       Error);
  CHECK_THROWS_WITH_AS(save_safetensors("/nonexistent-dir/x.safetensors", {{"a", a}}),
                       doctest::Contains("/nonexistent-dir/x.safetensors"), Error);
}

TEST_CASE("bad files: every error names the file and the problem") {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string eight(8, '\0');
  CHECK_THROWS_WITH_AS(load_safetensors(temp_path("missing")), doctest::Contains("cannot open"), Error);
  {
    std::string p = temp_path("short");
    std::ofstream(p, std::ios::binary) << "abc";
    check_error(p, "truncated");
  }
  check_error(raw_file("huge", ok, eight, int64_t{1} << 40), "exceeds");
  check_error(raw_file("cut_header", ok, eight, static_cast<int64_t>(ok.size()) + 100), "truncated");
  check_error(raw_file("cut_data", ok, "1234"), "outside");
  check_error(raw_file("json", R"({"a":{"dtype":"F32",)", eight), "bad JSON");
  check_error(raw_file("trailing", ok + "x", eight), "expected end of input");
  check_error(raw_file("not_object", "[1,2]", ""), "JSON object");
  check_error(raw_file("dtype", R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", eight), "F16");
  check_error(raw_file("no_dtype", R"({"a":{"shape":[2],"data_offsets":[0,8]}})", eight), "no dtype");
  check_error(raw_file("size", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight), "needs 12");
  check_error(raw_file("shape", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}})", eight),
              "'shape' must hold non-negative integers");
  check_error(raw_file("offsets", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}})", eight), "data_offsets");
  check_error(
      raw_file(
          "overlap",
          R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1],"data_offsets":[4,8]}})",
          eight),
      "'a' and 'b' overlap");
  check_error(
      raw_file(
          "twice",
          R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",
          ""),
      "tensor 'a' appears twice");
  check_error(raw_file("meta", R"({"__metadata__":{"k":1}})", ""), "not a string");
  check_error(raw_file("meta_twice", R"({"__metadata__":{"k":"1","k":"2"}})", ""), "member 'k' appears twice");
  // found by the fuzzer: a number past double's range is nlohmann's out_of_range, not its parse_error
  check_error(raw_file("huge_number", R"({"a":1E98736})", ""), "bad JSON header");
  check_error(raw_file("deep", std::string(100, '[') + std::string(100, ']'), ""), "nested too deeply");
  check_error(
      raw_file("big_shape", R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", eight),
      "larger than the file");
}
