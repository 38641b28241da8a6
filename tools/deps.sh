# Sourced by tools/run.sh and tools/test.sh: installs the Debian packages lasgrad needs, by name.
# As root it installs what is missing without prompting and says what; otherwise it prints the exact
# apt line and stops.

# Packages every build needs (Cairo and the DejaVu fonts draw the figures, toml++ reads config.toml,
# nlohmann-json every JSON file, CLI11 the command line, Open MPI the data-parallel ranks; a build
# without Open MPI trains in one process); the test suite adds clang's libFuzzer for its short fuzz run,
# clang-format for the formatting check, and Chromium with Python 3 to load a report in a real browser
# and check what it shows.
LASGRAD_BUILD_PACKAGES=(cmake make g++ pkg-config libeigen3-dev doctest-dev zlib1g-dev libpng-dev libcairo2-dev fonts-dejavu-core
                        libtomlplusplus-dev nlohmann-json3-dev libcli11-dev libopenmpi-dev openmpi-bin)
LASGRAD_TEST_PACKAGES=(clang libclang-rt-14-dev clang-format chromium python3)
# Data some experiments read (tools/experiments_mnist.sh): Fashion-MNIST's idx files for the sfmnist task.
LASGRAD_DATA_PACKAGES=(dataset-fashion-mnist)

lasgrad_require() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "lasgrad needs these Debian packages: ${missing[*]}" >&2
    echo "install them with:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

lasgrad_jobs() { nproc 2>/dev/null || echo 2; }
