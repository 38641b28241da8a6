// Eigen for the CPU kernels, with the Array/Matrix maps they share.
#pragma once
// GCC 12 reports -Wmaybe-uninitialized (and, in sanitizer builds, -Wuninitialized) inside its own
// AVX-512 intrinsics when Eigen's packet math inlines them (GCC bug 105593, fixed in GCC 13). The
// warning is emitted where the code is inlined, so it is silenced for the rest of the translation unit;
// that is only files that use Eigen.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <Eigen/Core>
#include <vector>

namespace lasgrad::cpu {

template <class T>
using Vec = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using CVec = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Scratch that Eigen reduces (.sum(), .dot()), aligned as tensor storage is. Eigen's vectorised sums add
// scalar entries up to the first aligned address, then whole packets: over a plain std::vector, whose
// alignment depends on what the heap did before, the same call split a row differently from run to run
// (a longer --out path changed a training run's bits by step 650).
template <class T>
using Scratch = std::vector<T, Eigen::aligned_allocator<T>>;

}  // namespace lasgrad::cpu
