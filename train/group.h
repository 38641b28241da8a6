// The process group a run trains in: data-parallel ranks over MPI (docs/distributed.md). A process
// that mpirun (or srun) did not start, or a lasgrad built without Open MPI, is a group of one, and
// every call below is then the identity.
//
//   Group& g = Group::world();
//   g.sum(grads.data(), n);                  // all-reduce: every rank ends with the sum over ranks
//   if (g.root()) write_checkpoint(...);     // rank 0 alone writes
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/replicas.h"

namespace lasgrad::train {

class Group : public Replicas {
 public:
  // The group of every rank of this job, set up on the first call: with MPI when a launcher started
  // several ranks (OMPI_COMM_WORLD_SIZE from mpirun, PMI_SIZE, or SLURM_STEP_NUM_TASKS from srun above
  // 1), else one rank. A job of several ranks in a build without MPI is refused with a message saying so.
  static Group& world();

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool root() const { return rank_ == 0; }
  // This rank's index among the ranks on its machine (those sharing its memory): the GPU it drives.
  int local_rank() const { return local_rank_; }

  // In-place all-reduce sums over the ranks: one collective call however long the buffer.
  void sum(float* data, int64_t n) override;
  void sum(double* data, int64_t n) override;
  void sum(std::vector<double>& v) { sum(v.data(), static_cast<int64_t>(v.size())); }

  // Returns on every rank once all of them have called it.
  void barrier();

  // Throws Error on every rank when `text` (a run's resolved settings, say) is not the same on all of
  // them, naming `what` and the first rank that differs from rank 0.
  void check_same(const std::string& what, const std::string& text);

  // Bytes and seconds spent in sum() since the start: what docs/distributed.md reports per step.
  int64_t bytes_reduced() const { return bytes_; }
  double seconds_reducing() const { return seconds_; }

  // Ends every rank of the job at once (MPI_Abort), for an error seen by one rank that the others
  // would otherwise wait on forever in their next collective.
  [[noreturn]] void abort(int code);

  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;
  ~Group() override;

 private:
  Group();
  void reduce(void* data, int64_t n, bool f64);  // the one all-reduce behind sum()
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  bool mpi_ = false;
  int64_t bytes_ = 0;
  double seconds_ = 0;
};

// Whether this lasgrad was built with Open MPI (LASGRAD_HAVE_MPI).
bool built_with_mpi();

// FNV-1a over n bytes, continuing from h: the fingerprints that Group::check_same compares.
inline uint64_t hash_bytes(const void* data, size_t n, uint64_t h = 1469598103934665603ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

}  // namespace lasgrad::train
