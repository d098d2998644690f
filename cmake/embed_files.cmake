# Writes OUTPUT: a C++ source holding text files as raw string literals, so the installed binary
# needs no data files. Usage:
#   cmake -DOUTPUT=x.cpp -DROOT=dir -DFILES="a|b" -DHEADER=x.hpp -DNAMESPACE=ns -P embed_files.cmake
# HEADER must declare `struct file { const char* path; const char* text; }`, `files[]` and
# `file_count` in NAMESPACE.
string(REPLACE "|" ";" FILES "${FILES}")
set(body "// Generated from ${FILES}; do not edit.\n#include \"${HEADER}\"\n\n")
string(APPEND body "namespace ${NAMESPACE} {\n\nconst file files[] = {\n")
set(count 0)
foreach(rel IN LISTS FILES)
  file(READ "${ROOT}/${rel}" text)
  string(APPEND body "  {\"${rel}\", R\"smtpfault_embed(${text})smtpfault_embed\"},\n")
  math(EXPR count "${count} + 1")
endforeach()
string(APPEND body "};\n\nconst std::size_t file_count = ${count};\n\n}  // namespace ${NAMESPACE}\n")
file(WRITE "${OUTPUT}.tmp" "${body}")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
