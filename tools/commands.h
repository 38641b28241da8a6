// The `lasgrad` subcommands, each in tools/cmd_<name>.cpp and listed in kCommands in tools/lasgrad.cpp.
#pragma once

namespace lasgrad::tools {

int cmd_gen(int argc, char** argv);
int cmd_data(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_attn(int argc, char** argv);
int cmd_sweep(int argc, char** argv);
int cmd_report(int argc, char** argv);

}  // namespace lasgrad::tools
