// An enum's names, declared once per enum as a table that parsing, printing and help text all read:
//
//   inline constexpr EnumName<NormKind> kNormNames[] = {{NormKind::Layer, "layer"}, {NormKind::Batch, "batch"}};
//   NormKind n = parse_name(kNormNames, "layer", "norm");   // throws "norm = 'x' is not one of layer, batch"
//   const char* s = name_of(kNormNames, n);
#pragma once
#include <cstddef>
#include <string>

#include "engine/error.h"

namespace lasgrad {

template <class E>
struct EnumName {
  E value;
  const char* name;
};

// "a, b, c" (or joined by `sep`): the names in table order.
template <class E, size_t N>
std::string names_list(const EnumName<E> (&table)[N], const char* sep = ", ") {
  std::string out;
  for (const auto& e : table) out += (out.empty() ? "" : sep) + std::string(e.name);
  return out;
}

// The value named `s`; throws Error naming `what` and the choices otherwise.
template <class E, size_t N>
E parse_name(const EnumName<E> (&table)[N], const std::string& s, const std::string& what) {
  for (const auto& e : table)
    if (s == e.name) return e.value;
  throw Error(what + " = '" + s + "' is not one of " + names_list(table));
}

template <class E, size_t N>
const char* name_of(const EnumName<E> (&table)[N], E v) {
  for (const auto& e : table)
    if (e.value == v) return e.name;
  throw Error("name_of: a value missing from its name table");
}

}  // namespace lasgrad
