// An exclusive lock on a folder for the life of a process (a run directory, a sweep folder): a flock on
// DIR/NAME, which also holds the holder's PID for the refusal message. The kernel drops the lock when
// the process ends however it ends, so a lock left by a dead process is never in the way.
#pragma once
#include <functional>
#include <string>

namespace lasgrad::tools {

class DirLock {
 public:
  // Creates `dir` if needed and takes DIR/NAME; throws Error "<what> is in use by another lasgrad
  // (pid N, lock DIR/NAME)" when another process holds it. A folder it created that holds nothing but
  // the lock when it is released (the command failed before writing) is removed with it.
  DirLock(const std::string& dir, const std::string& name, const std::string& what);
  ~DirLock();

  // Waits while another process holds DIR/NAME (calling `waiting` with its PID first), then returns
  // true; takes nothing. Returns false when a signal interrupted the wait.
  static bool await_free(const std::string& dir, const std::string& name,
                         const std::function<void(const std::string& pid)>& waiting);
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
  bool created_ = false;  // `dir` was made here
  std::string dir_, path_;
};

}  // namespace lasgrad::tools
