#include "tools/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "engine/error.h"

namespace lasgrad::tools {

DirLock::DirLock(const std::string& dir, const std::string& name, const std::string& what) {
  created_ = std::filesystem::create_directories(dir);
  dir_ = dir;
  const std::string path = (std::filesystem::path(dir) / name).string();
  path_ = path;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot open the lock file " + path + ": " + std::strerror(errno));
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {0};
    const ssize_t n = pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    const std::string pid = n > 0 ? std::string(buf, strcspn(buf, "\n")) : "unknown";
    throw Error(what + " is in use by another lasgrad (pid " + pid + ", lock " + path + ")");
  }
  const std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd_, 0) != 0 || pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // The PID only makes the refusal message more helpful; the flock is what protects the folder.
  }
}

DirLock::~DirLock() {
  std::error_code ec;  // no throwing here: this may run while an error unwinds
  if (created_) {
    int entries = 0;
    for (auto it = std::filesystem::directory_iterator(dir_, ec); !ec && it != std::filesystem::directory_iterator();
         it.increment(ec))
      ++entries;
    if (!ec && entries == 1 && std::filesystem::remove(path_, ec)) std::filesystem::remove(dir_, ec);
  }
  ::close(fd_);
}

bool DirLock::await_free(const std::string& dir, const std::string& name,
                         const std::function<void(const std::string& pid)>& waiting) {
  const std::string path = (std::filesystem::path(dir) / name).string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;  // no lock file: nobody holds it
  bool free = flock(fd, LOCK_SH | LOCK_NB) == 0;
  if (!free) {
    char buf[32] = {0};
    const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    waiting(n > 0 ? std::string(buf, strcspn(buf, "\n")) : "unknown");
    free = flock(fd, LOCK_SH) == 0;  // blocks; EINTR when a signal arrives
  }
  ::close(fd);
  return free;
}

}  // namespace lasgrad::tools
