// The ListOps generator, a port of the Long Range Arena generator's rules (docs/data.md): expressions
// over MIN, MAX, MED (median) and SM (sum mod 10) of digits, drawn to depth 10 with 2..10 arguments,
// kept when 500 < length < 2000 (length counts tokens without parentheses) and distinct, printed in the
// benchmark's fully bracketed form, e.g. "( ( ( [MED 6 ) 1 ) ] )".
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace lasgrad::data {

struct ListOpsGenOptions {
  uint64_t seed = 0;
  int64_t train = 96000, val = 2000, test = 2000;  // the release's split of 100,000 trees
  int64_t min_length = 500, max_length = 2000;     // kept when min_length < length < max_length
  int threads = 0;  // 0 or more than the cores: all cores; the output does not depend on it
};

struct ListOpsGenStats {
  int64_t drawn = 0;       // trees drawn up to the last one kept
  int64_t kept = 0;        // written
  int64_t duplicates = 0;  // in bounds but equal to an earlier tree
  int64_t total_length = 0;
  int64_t label_counts[10] = {};
};

// Writes dir/basic_{train,val,test}.tsv (header "Source<TAB>Target"), streaming: trees are written as
// they are accepted, so memory stays small whatever the count, to <name>.tmp files renamed when all three
// are complete. Throws DataError (and leaves no file) when 2^24 candidates in a row bring no new tree:
// bounds that no tree meets, or too few distinct trees for the count. Tree k of the draw sequence uses its own
// random stream derived from (seed, k), so the files are the same for any thread count.
// `progress(kept, total)` is called now and then from the calling thread.
ListOpsGenStats generate_listops(const std::string& dir, const ListOpsGenOptions& options,
                                 const std::function<void(int64_t, int64_t)>& progress = {});

// One candidate tree k of the sequence for (seed, k): true and its printed source, label and length when
// it falls in the bounds. Exposed for tests.
bool listops_candidate(uint64_t seed, uint64_t k, int64_t min_length, int64_t max_length, std::string& source,
                       int& label, int64_t& length);

}  // namespace lasgrad::data
