#include "net/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>

namespace smtpfault::net {

namespace ssl = boost::asio::ssl;

namespace {

struct pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct x509_free {
  void operator()(X509* p) const { X509_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

void add_san(X509* cert, const std::string& hostname) {
  std::string san = "DNS:" + hostname + ",DNS:localhost,IP:127.0.0.1,IP:::1";
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
  if (!ext) throw std::runtime_error("cannot build subjectAltName: " + openssl_error());
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// An EC P-256 key and a one-year certificate: generating it takes about a millisecond,
// so start-up stays fast.
std::pair<pkey_ptr, x509_ptr> make_self_signed(const std::string& hostname) {
  pkey_ptr key(EVP_EC_gen("P-256"));
  if (!key) throw std::runtime_error("cannot generate a TLS key: " + openssl_error());
  x509_ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(hostname.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  add_san(cert.get(), hostname);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    throw std::runtime_error("cannot sign the TLS certificate: " + openssl_error());
  }
  return {std::move(key), std::move(cert)};
}

}  // namespace

ssl::context make_server_context(const tls_identity& id) {
  ssl::context ctx(ssl::context::tls_server);
  // TLS 1.2 and later unless a scenario asks for less.
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  if (id.cert_file.empty() != id.key_file.empty()) {
    throw std::runtime_error("tls.cert and tls.key must be given together");
  }
  if (!id.cert_file.empty()) {
    boost::system::error_code ec;
    ctx.use_certificate_chain_file(id.cert_file, ec);
    if (ec) throw std::runtime_error("tls.cert " + id.cert_file + ": " + ec.message());
    ctx.use_private_key_file(id.key_file, ssl::context::pem, ec);
    if (ec) throw std::runtime_error("tls.key " + id.key_file + ": " + ec.message());
    return ctx;
  }
  auto [key, cert] = make_self_signed(id.hostname);
  if (SSL_CTX_use_certificate(ctx.native_handle(), cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx.native_handle(), key.get()) != 1) {
    throw std::runtime_error("cannot use the generated certificate: " + openssl_error());
  }
  return ctx;
}

ssl::context make_client_context(bool verify) {
  ssl::context ctx(ssl::context::tls_client);
  if (verify) {
    ctx.set_default_verify_paths();
    ctx.set_verify_mode(ssl::verify_peer);
  } else {
    ctx.set_verify_mode(ssl::verify_none);
  }
  return ctx;
}

}  // namespace smtpfault::net
