#include "data/listops_gen.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>
#include <unordered_set>
#include <vector>

#include "data/dataset.h"
#include "data/error.h"
#include "engine/rng.h"

namespace lasgrad::data {

namespace {

constexpr int kMaxDepth = 10, kMaxArgs = 10;
constexpr double kValueP = 0.25;  // an inner draw above this is a leaf
const char* const kOps[4] = {"[MIN", "[MAX", "[MED", "[SM"};

// A tree in preorder: a leaf is {digit, 0}; an operator node is {10 + op, number of children} followed
// by its children.
struct Node {
  int8_t kind, children;
};

// Draws node(depth) into `out`; returns false as soon as the tree's length reaches max_length (such a
// tree can never be kept, and each candidate has its own random stream, so stopping early changes
// nothing else). `length` accumulates tokens without parentheses.
bool draw(Rng& rng, int depth, int64_t max_length, std::vector<Node>& out, int64_t& length) {
  double r = depth < kMaxDepth ? rng.uniform() : 1.0;
  if (r > kValueP) {
    out.push_back({static_cast<int8_t>(rng.below(10)), 0});
    return ++length < max_length;
  }
  int n = static_cast<int>(rng.range(2, kMaxArgs));
  size_t at = out.size();
  out.push_back({0, static_cast<int8_t>(n)});
  length += 2;  // the operator and the closing "]"
  if (length >= max_length) return false;
  for (int c = 0; c < n; ++c)
    if (!draw(rng, depth + 1, max_length, out, length)) return false;
  // The LRA generator picks the operator after the children; the order of draws does not change the
  // distribution.
  out[at].kind = static_cast<int8_t>(10 + rng.below(4));
  return true;
}

// Prints the subtree at nodes[i] and returns its value; advances i past it.
int render(const std::vector<Node>& nodes, size_t& i, std::string& s) {
  Node nd = nodes[i++];
  if (nd.kind < 10) {
    s += static_cast<char>('0' + nd.kind);
    return nd.kind;
  }
  // ((((op, c1), c2) ... cn), "]") printed pair by pair as "( left right )".
  for (int k = 0; k <= nd.children; ++k) s += "( ";
  s += kOps[nd.kind - 10];
  std::vector<int> vals(nd.children);
  for (int c = 0; c < nd.children; ++c) {
    s += ' ';
    vals[c] = render(nodes, i, s);
    s += " )";
  }
  s += " ] )";
  const int n = nd.children;
  switch (nd.kind - 10) {
    case 0: return *std::min_element(vals.begin(), vals.end());
    case 1: return *std::max_element(vals.begin(), vals.end());
    case 2: {
      std::sort(vals.begin(), vals.end());
      // np.median, then int(): the mean of the two middle values, truncated, for an even count.
      return n % 2 ? vals[n / 2] : (vals[n / 2 - 1] + vals[n / 2]) / 2;
    }
    default: {
      int sum = 0;
      for (int c = 0; c < n; ++c) sum += vals[c];
      return sum % 10;
    }
  }
}

// 128 bits of hash of a source string, for the distinct-trees rule without keeping the strings.
std::pair<uint64_t, uint64_t> hash128(const std::string& s) {
  uint64_t a = 0x243f6a8885a308d3ull, b = 0x13198a2e03707344ull;
  for (unsigned char c : s) {
    a = (a ^ c) * 0x100000001b3ull;
    b = mix64(b ^ c);
  }
  return {mix64(a ^ s.size()), b};
}

struct PairHash {
  size_t operator()(const std::pair<uint64_t, uint64_t>& p) const { return p.first ^ (p.second * 31); }
};

struct Accepted {
  uint64_t k;
  std::string source;
  int label;
  int64_t length;
};

}  // namespace

bool listops_candidate(uint64_t seed, uint64_t k, int64_t min_length, int64_t max_length, std::string& source,
                       int& label, int64_t& length) {
  Rng rng(derive_seed(seed, k));
  std::vector<Node> nodes;
  length = 0;
  if (!draw(rng, 1, max_length, nodes, length) || length <= min_length) return false;
  source.clear();
  size_t i = 0;
  label = render(nodes, i, source);
  return true;
}

ListOpsGenStats generate_listops(const std::string& dir, const ListOpsGenOptions& o,
                                 const std::function<void(int64_t, int64_t)>& progress) {
  if (o.train < 0 || o.val < 0 || o.test < 0) throw DataError("ListOps generator: split sizes must not be negative");
  if (o.min_length < 0 || o.max_length <= o.min_length + 1)
    throw DataError("ListOps generator: need 0 <= min_length < length < max_length for some length");
  std::filesystem::create_directories(dir);
  const int64_t total = o.train + o.val + o.test;
  const int threads = worker_threads(o.threads);
  const std::string names[3] = {"basic_train.tsv", "basic_val.tsv", "basic_test.tsv"};
  const int64_t counts[3] = {o.train, o.val, o.test};
  // Each split is written to <name>.tmp and renamed once all three are complete: an interrupted or
  // failed run leaves no file that looks like data (and none that refuses the rerun).
  std::vector<std::string> written;
  auto path_of = [&](int i) { return (std::filesystem::path(dir) / names[i]).string(); };
  ListOpsGenStats stats;
  std::unordered_set<std::pair<uint64_t, uint64_t>, PairHash> seen;
  int part = 0;
  int64_t in_part = 0;
  std::ofstream out;
  auto open_part = [&] {
    if (out.is_open()) {
      out.close();
      if (!out) throw DataError("ListOps generator: write error in " + written.back());
    }
    written.push_back(path_of(part) + ".tmp");
    out.open(written.back(), std::ios::binary | std::ios::trunc);
    if (!out) throw DataError("ListOps generator: cannot write " + written.back());
    out << "Source\tTarget\n";
  };
  try {
    open_part();
    // Candidates in blocks: threads draw a block in parallel, then the accepted trees are filtered for
    // duplicates and written in candidate order, which makes the result independent of `threads`.
    // Bounds that no tree meets, or that too few distinct trees meet, would draw forever: the run gives
    // up when kMaxDry candidates in a row bring no new tree (a normal run's longest gap is a few hundred).
    const uint64_t block = 4096, kMaxDry = uint64_t(1) << 24;
    uint64_t last_new = 0;
    std::vector<std::vector<Accepted>> found(threads);
    for (uint64_t start = 0; stats.kept < total; start += block) {
      if (start - last_new >= kMaxDry)
        throw DataError("ListOps generator: " + std::to_string(kMaxDry) + " trees drawn in a row brought no new one (" +
                        std::to_string(stats.kept) + " of " + std::to_string(total) + " kept, " +
                        std::to_string(stats.duplicates) + " duplicates): too few distinct trees have " +
                        std::to_string(o.min_length) + " < length < " + std::to_string(o.max_length) +
                        "; widen the bounds or ask for fewer trees");
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
          found[t].clear();
          Accepted a;
          for (uint64_t k = start + t; k < start + block; k += threads)
            if (listops_candidate(o.seed, k, o.min_length, o.max_length, a.source, a.label, a.length)) {
              a.k = k;
              found[t].push_back(a);
            }
        });
      }
      for (auto& th : pool) th.join();
      std::vector<Accepted*> block_found;
      for (auto& f : found)
        for (auto& a : f) block_found.push_back(&a);
      std::sort(block_found.begin(), block_found.end(), [](auto* x, auto* y) { return x->k < y->k; });
      for (Accepted* a : block_found) {
        if (stats.kept == total) break;
        if (!seen.insert(hash128(a->source)).second) {
          ++stats.duplicates;
          continue;
        }
        while (in_part == counts[part]) {
          ++part;
          in_part = 0;
          open_part();
        }
        out << a->source << '\t' << a->label << '\n';
        ++in_part;
        ++stats.kept;
        stats.drawn = a->k + 1;
        last_new = a->k;
        stats.total_length += a->length;
        ++stats.label_counts[a->label];
      }
      if (progress) progress(stats.kept, total);
    }
    while (part < 2) {  // empty later splits still get their file with the header
      ++part;
      open_part();
    }
    out.close();
    if (!out) throw DataError("ListOps generator: write error in " + written.back());
  } catch (...) {
    out.close();
    for (const auto& w : written) std::filesystem::remove(w);
    throw;
  }
  for (int i = 0; i < 3; ++i) std::filesystem::rename(written[i], path_of(i));
  return stats;
}

}  // namespace lasgrad::data
