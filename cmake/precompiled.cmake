# Precompiled headers for the targets whose files include the same large libraries.
# Asio, Beast with Boost.JSON and GoogleTest take 1.5-4 s to parse in every file that
# includes them; precompiling them once per target saves that in every clean build,
# and three clean builds (release, ASan+UBSan, TSan) make up most of a CI run.
# Turn off (-DSMTPFAULT_PCH=OFF) to check that every file includes what it uses.
option(SMTPFAULT_PCH "Precompile the large library headers of each target" ON)

set(smtpfault_pch_std <algorithm> <chrono> <functional> <map> <memory> <optional> <string>
    <string_view> <vector>)
set(smtpfault_pch_asio ${smtpfault_pch_std}
    <boost/asio/as_tuple.hpp> <boost/asio/awaitable.hpp> <boost/asio/co_spawn.hpp>
    <boost/asio/connect.hpp> <boost/asio/experimental/awaitable_operators.hpp>
    <boost/asio/io_context.hpp> <boost/asio/ip/tcp.hpp> <boost/asio/ssl/context.hpp>
    <boost/asio/ssl/stream.hpp> <boost/asio/steady_timer.hpp> <boost/asio/use_awaitable.hpp>)
set(smtpfault_pch_http ${smtpfault_pch_asio}
    <boost/beast/core/flat_buffer.hpp> <boost/beast/http/message.hpp>
    <boost/beast/http/read.hpp> <boost/beast/http/string_body.hpp>
    <boost/beast/http/write.hpp> <boost/json/array.hpp> <boost/json/object.hpp>
    <boost/json/parse.hpp> <boost/json/serialize.hpp> <boost/json/value.hpp>)
set(smtpfault_pch_gtest ${smtpfault_pch_std} <gtest/gtest.h>)
set(smtpfault_pch_gmock ${smtpfault_pch_gtest} <gmock/gmock.h>)

# smtpfault_precompile(target asio|http|gtest|gmock)
function(smtpfault_precompile target set)
  if(NOT SMTPFAULT_PCH)
    return()
  endif()
  target_precompile_headers(${target} PRIVATE ${smtpfault_pch_${set}})
  # GCC 12 does not know that code from a precompiled header is the standard library's, and
  # reports its known false positives in std::string's inlined operator+ (impossible sizes and
  # offsets) as if they were ours. Builds with SMTPFAULT_PCH=OFF or in Debug keep the checks.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE
      "$<$<NOT:$<CONFIG:Debug>>:-Wno-array-bounds;-Wno-stringop-overflow>")
  endif()
endfunction()
