#include "tools/cli.h"

#include "engine/parse.h"

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace lasgrad::cli {

int dispatch(const std::string& program, const std::vector<Command>& table, int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    FILE* out = argc < 2 ? stderr : stdout;
    std::fprintf(out, "usage: %s SUBCOMMAND [flags]   (%s SUBCOMMAND --help for its flags)\n\nsubcommands:\n",
                 program.c_str(), program.c_str());
    for (const auto& c : table) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : table)
    if (!std::strcmp(argv[1], c.name)) return c.run(argc - 1, argv + 1);
  throw UsageError("unknown subcommand '" + std::string(argv[1]) + "' (see " + program + " --help)");
}

Flags::Flags(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}

Flags& Flags::option(const std::string& name, const std::string& default_value, const std::string& help) {
  order_.push_back(name);
  specs_[name] = {Kind::Option, default_value, help};
  return *this;
}

Flags& Flags::repeated(const std::string& name, const std::string& help) {
  order_.push_back(name);
  specs_[name] = {Kind::Repeated, "", help};
  return *this;
}

Flags& Flags::toggle(const std::string& name, const std::string& help) {
  order_.push_back(name);
  specs_[name] = {Kind::Toggle, "", help};
  return *this;
}

const Flags::Spec& Flags::spec(const std::string& name) const {
  auto it = specs_.find(name);
  if (it == specs_.end()) throw std::logic_error(command_ + ": flag --" + name + " was never declared");
  return it->second;
}

bool Flags::parse(int argc, char** argv) {
  // CLI11 reads the command line; the values, the numbers' strict parsing and the help text stay here.
  CLI::App app(summary_, command_);
  app.set_help_flag();  // --help is ours: it prints help() with every default
  bool help_asked = false;
  app.add_flag("--help,-h", help_asked);
  std::map<std::string, std::vector<std::string>> got;
  std::map<std::string, bool> toggled;
  std::map<std::string, CLI::Option*> opts;
  for (const auto& name : order_) {
    if (specs_.at(name).kind == Kind::Toggle) {
      opts[name] = app.add_flag("--" + name, toggled[name]);
    } else {
      opts[name] = app.add_option("--" + name, got[name])
                       ->expected(1)
                       ->allow_extra_args(false)
                       ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);  // "given twice" is told below
    }
  }
  app.allow_extras();  // what CLI11 does not know is named below, in lasgrad's words
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (!help_asked) throw UsageError(std::string(e.what()) + " (see --help)");
  }
  if (help_asked) {
    std::fputs(help().c_str(), stdout);
    return false;
  }
  for (const std::string& extra : app.remaining()) {
    if (extra.rfind("--", 0) == 0)
      throw UsageError("unknown flag " + extra.substr(0, extra.find('=')) + " (see --help)");
    throw UsageError("unexpected argument '" + extra + "' (see --help)");
  }
  for (const auto& name : order_) {
    if (opts[name]->count() == 0) continue;
    const Kind kind = specs_.at(name).kind;
    if (kind == Kind::Option && got[name].size() > 1) throw UsageError("flag --" + name + " given twice");
    if (kind != Kind::Toggle) values_[name] = got[name];
    else if (toggled[name]) values_[name] = {"1"};  // --name=false leaves it off
  }
  return true;
}

const std::string& Flags::str(const std::string& name) const {
  const Spec& s = spec(name);
  auto it = values_.find(name);
  return it == values_.end() ? s.default_value : it->second.front();
}

int64_t Flags::integer(const std::string& name) const {
  const std::string& v = str(name);
  int64_t x = 0;
  if (!parse_int64(v, x))
    throw UsageError("flag --" + name + " needs a whole number in the 64-bit range, got '" + v + "'");
  return x;
}

const std::string& Flags::choice(const std::string& name, const std::vector<std::string>& choices) const {
  const std::string& v = str(name);
  std::string all;
  for (const auto& c : choices) {
    if (v == c) return v;
    all += (all.empty() ? "" : ", ") + c;
  }
  throw UsageError("flag --" + name + " must be one of " + all + ", got '" + v + "'");
}

double Flags::number(const std::string& name) const {
  const std::string& v = str(name);
  double x = 0;
  if (!parse_decimal(v, x)) throw UsageError("flag --" + name + " needs a finite decimal number, got '" + v + "'");
  return x;
}

bool Flags::on(const std::string& name) const {
  spec(name);
  return values_.count(name) > 0;
}

const std::vector<std::string>& Flags::all(const std::string& name) const {
  static const std::vector<std::string> none;
  spec(name);
  auto it = values_.find(name);
  return it == values_.end() ? none : it->second;
}

bool Flags::given(const std::string& name) const {
  spec(name);
  return values_.count(name) > 0;
}

std::string Flags::help() const {
  std::ostringstream out;
  out << "usage: " << command_ << " [flags]\n\n" << summary_ << "\n\nflags:\n";
  for (const auto& name : order_) {
    const Spec& s = specs_.at(name);
    std::string left = "  --" + name + (s.kind == Kind::Toggle ? "" : " VALUE");
    out << left;
    for (size_t pad = left.size(); pad < 30; ++pad) out << ' ';
    out << ' ' << s.help;
    if (s.kind == Kind::Option) out << " (default: " << (s.default_value.empty() ? "none" : s.default_value) << ")";
    if (s.kind == Kind::Repeated) out << " (repeatable)";
    out << '\n';
  }
  out << "  --help                         print this help\n";
  return out.str();
}

}  // namespace lasgrad::cli
