// The `lasgrad` subcommands, each in tools/cmd_<name>.cpp and listed in kCommands in tools/lasgrad.cpp.
#pragma once
#include <string>

namespace lasgrad::tools {

int cmd_gen(int argc, char** argv);
int cmd_data(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_attn(int argc, char** argv);
int cmd_sweep(int argc, char** argv);
int cmd_report(int argc, char** argv);

// Whether `path` is a page that `lasgrad report` wrote (tools/cmd_report.cpp).
bool is_report(const std::string& path);
// Whether `name` is the name of a file that `lasgrad attn` writes (tools/cmd_attn.cpp).
bool is_attn_file(const std::string& name);

}  // namespace lasgrad::tools
