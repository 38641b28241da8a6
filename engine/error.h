// lasgrad's one error hierarchy. Every error a user can cause is an Error, whose message says what and
// where; tools/lasgrad.cpp maps them to exit codes: a UsageError (tools/cli.h: flags, names) exits 2,
// any other Error (bad shapes, settings, data files as data::DataError, checkpoints, I/O) exits 1.
// Header-only, so the data library uses it without depending on the engine.
#pragma once
#include <stdexcept>

namespace lasgrad {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace lasgrad
