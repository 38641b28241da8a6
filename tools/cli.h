// Command-line flags for every `lasgrad` subcommand: one parser (CLI11 underneath), one --help format,
// one error style.
//
//   cli::Flags f("lasgrad gen listops", "Generate ListOps TSVs with the LRA generator's rules.");
//   f.option("out", "data/listops", "output directory")
//    .option("seed", "0", "random seed")
//    .toggle("quiet", "print nothing but errors");
//   if (!f.parse(argc, argv)) return 0;      // --help was printed
//   int64_t seed = f.integer("seed");
//
// Errors (unknown flag, missing value, a value that is not a number) throw cli::UsageError, which
// tools/lasgrad.cpp turns into a message naming the command and exit status 2.
#pragma once
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/error.h"

namespace lasgrad::cli {

// A mistake in how a command was called (flag, value, name): exit status 2. See engine/error.h.
struct UsageError : Error {
  using Error::Error;
};

// A named entry point: a `lasgrad` subcommand, or an action under one (`lasgrad gen listops`). run gets
// the entry's own argv (argv[0] is its name).
struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};

// Runs the entry of `table` named by argv[1] with (argc - 1, argv + 1). Without a name, or with --help,
// prints `program`'s usage and the table (to stderr returning 2, or to stdout returning 0). An unknown
// name throws UsageError.
int dispatch(const std::string& program, const std::vector<Command>& table, int argc, char** argv);

class Flags {
 public:
  Flags(std::string command, std::string summary);

  // --name VALUE (or --name=VALUE); the default is shown by --help.
  Flags& option(const std::string& name, const std::string& default_value, const std::string& help);
  // --name VALUE that may be given many times (e.g. --set key=value); default empty.
  Flags& repeated(const std::string& name, const std::string& help);
  // --name with no value; off unless given.
  Flags& toggle(const std::string& name, const std::string& help);

  // Parses argv[1..argc) (argv[0] is the subcommand). Returns false when --help was printed.
  bool parse(int argc, char** argv);

  const std::string& str(const std::string& name) const;
  int64_t integer(const std::string& name) const;  // throws UsageError unless a whole number
  double number(const std::string& name) const;    // throws UsageError unless a finite number
  // The value, which must be one of `choices`; throws UsageError listing them otherwise.
  const std::string& choice(const std::string& name, const std::vector<std::string>& choices) const;
  bool on(const std::string& name) const;
  const std::vector<std::string>& all(const std::string& name) const;
  bool given(const std::string& name) const;  // set on the command line, not defaulted

  std::string help() const;

 private:
  enum class Kind { Option, Repeated, Toggle };
  struct Spec {
    Kind kind;
    std::string default_value, help;
  };
  const Spec& spec(const std::string& name) const;

  std::string command_, summary_;
  std::vector<std::string> order_;
  std::map<std::string, Spec> specs_;
  std::map<std::string, std::vector<std::string>> values_;
};

}  // namespace lasgrad::cli
