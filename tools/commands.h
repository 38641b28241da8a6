// Every `lasgrad` subcommand: a name, a one-line summary and an entry point taking the subcommand's own
// argv (argv[0] is the subcommand's name). To add one, write tools/cmd_<name>.cpp and add a row to
// kCommands in tools/lasgrad.cpp.
#pragma once

namespace lasgrad::tools {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};

int cmd_demo(int argc, char** argv);
int cmd_gen(int argc, char** argv);
int cmd_data(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_attn(int argc, char** argv);

}  // namespace lasgrad::tools
