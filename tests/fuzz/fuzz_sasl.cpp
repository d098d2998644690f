// SASL codecs: strict base64 (and its round trip), PLAIN, LOGIN, CRAM-MD5, XOAUTH2 decoding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proto/sasl.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace p = smtpfault::proto;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto decoded = p::base64_decode(input)) {
    (void)p::parse_plain(*decoded);
    (void)p::parse_xoauth2(*decoded);
    (void)p::parse_cram_md5(*decoded);
  }
  auto round = p::base64_decode(p::base64_encode(input));
  if (!round || *round != input) std::abort();
  (void)p::parse_mechanism(input);
  (void)p::cram_md5_digest(input.substr(0, size / 2), input.substr(size / 2));
  return 0;
}
