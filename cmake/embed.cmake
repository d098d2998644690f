# smtpfault_embed(OUTPUT out.cpp HEADER dir/x.hpp NAMESPACE ns FILES rel/path ...)
# Generates out.cpp with the files (paths relative to the project root) as string literals.
function(smtpfault_embed)
  cmake_parse_arguments(E "" "OUTPUT;HEADER;NAMESPACE" "FILES" ${ARGN})
  string(REPLACE ";" "|" files_arg "${E_FILES}")
  list(TRANSFORM E_FILES PREPEND ${PROJECT_SOURCE_DIR}/ OUTPUT_VARIABLE paths)
  add_custom_command(
    OUTPUT ${E_OUTPUT}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${E_OUTPUT} -DROOT=${PROJECT_SOURCE_DIR}
            "-DFILES=${files_arg}" -DHEADER=${E_HEADER} -DNAMESPACE=${E_NAMESPACE}
            -P ${PROJECT_SOURCE_DIR}/cmake/embed_files.cmake
    DEPENDS ${paths} ${PROJECT_SOURCE_DIR}/cmake/embed_files.cmake
    COMMENT "Embedding ${E_FILES}"
    VERBATIM)
  # Kept out of unity batches: editing a scenario or a certificate recompiles this file alone.
  set_source_files_properties(${E_OUTPUT} PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
endfunction()
