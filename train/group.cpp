#include "train/group.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "engine/error.h"

#ifdef LASGRAD_HAVE_MPI
#include <mpi.h>
#endif

namespace lasgrad::train {

namespace {

// Ranks in the job, from what the launcher put in the environment (mpirun, a PMI launcher, or an
// srun step, not merely a SLURM allocation); 1 when none did.
int launched_ranks() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"}) {
    const char* v = std::getenv(var);
    if (v && std::atoi(v) > 1) return std::atoi(v);
  }
  return 1;
}

}  // namespace

bool built_with_mpi() {
#ifdef LASGRAD_HAVE_MPI
  return true;
#else
  return false;
#endif
}

Group::Group() {
  const int launched = launched_ranks();
  if (launched == 1) return;
#ifdef LASGRAD_HAVE_MPI
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);  // OpenMP threads never call MPI
  // Errors come back as codes (then an Error), not as MPI's default abort without a word of ours.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm machine;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &machine);
  MPI_Comm_rank(machine, &local_rank_);
  MPI_Comm_free(&machine);
  mpi_ = true;
#else
  throw Error(
      "this job was started as " + std::to_string(launched) +
      " ranks (mpirun), but this lasgrad was built without MPI: install libopenmpi-dev (tools/deps.sh) and rebuild");
#endif
}

Group::~Group() {
#ifdef LASGRAD_HAVE_MPI
  if (mpi_) MPI_Finalize();
#endif
}

Group& Group::world() {
  static Group g;
  return g;
}

#ifdef LASGRAD_HAVE_MPI
namespace {
void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  throw Error(std::string(call) + " failed: " + std::string(text, static_cast<size_t>(len)));
}
}  // namespace
#endif

void Group::sum(float* data, int64_t n) { reduce(data, n, false); }
void Group::sum(double* data, int64_t n) { reduce(data, n, true); }

void Group::reduce(void* data, int64_t n, bool f64) {
  if (!mpi_ || n == 0) return;
#ifdef LASGRAD_HAVE_MPI
  const auto t0 = std::chrono::steady_clock::now();
  check(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(n), f64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
        "MPI_Allreduce");
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  bytes_ += n * static_cast<int64_t>(f64 ? sizeof(double) : sizeof(float));
#endif
}

void Group::barrier() {
  if (!mpi_) return;
#ifdef LASGRAD_HAVE_MPI
  check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
}

void Group::check_same(const std::string& what, const std::string& text) {
  if (!mpi_) return;
  // Each rank's text hashed and gathered: equal hashes everywhere or a named mismatch.
  const uint64_t h = hash_bytes(text.data(), text.size());
  // Two 32-bit halves as doubles (exact), summed into each rank's own slots.
  std::vector<double> halves(static_cast<size_t>(2 * size_), 0.0);
  halves[static_cast<size_t>(2 * rank_)] = static_cast<double>(h >> 32);
  halves[static_cast<size_t>(2 * rank_ + 1)] = static_cast<double>(h & 0xffffffffu);
  sum(halves);
  for (int r = 1; r < size_; ++r)
    if (halves[static_cast<size_t>(2 * r)] != halves[0] || halves[static_cast<size_t>(2 * r + 1)] != halves[1])
      throw Error(what + " differ between ranks: rank " + std::to_string(r) + " has other " + what +
                  " than rank 0 "
                  "(every rank must be started with the same flags and files)");
}

void Group::abort(int code) {
#ifdef LASGRAD_HAVE_MPI
  if (mpi_) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

}  // namespace lasgrad::train
