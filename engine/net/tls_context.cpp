#include "net/tls_context.hpp"

#include <arpa/inet.h>

#include <filesystem>
#include <fstream>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdexcept>

#include "net/embedded_certs.hpp"
#include "proto/address.hpp"

namespace smtpfault::net {

namespace ssl = boost::asio::ssl;

namespace {

bool is_ip_literal(const std::string& name) {
  unsigned char addr[16];
  return inet_pton(AF_INET, name.c_str(), addr) == 1 ||
         inet_pton(AF_INET6, name.c_str(), addr) == 1;
}

struct pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct x509_free {
  void operator()(X509* p) const { X509_free(p); }
};
struct bio_free {
  void operator()(BIO* p) const { BIO_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;
using bio_ptr = std::unique_ptr<BIO, bio_free>;

struct identity {
  pkey_ptr key;
  x509_ptr cert;
};

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::string_view embedded_file(std::string_view path) {
  for (std::size_t i = 0; i < embedded::file_count; ++i) {
    if (path == embedded::files[i].path) return embedded::files[i].text;
  }
  throw std::runtime_error("missing embedded file " + std::string(path));
}

bio_ptr memory_bio(std::string_view text) {
  return bio_ptr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

identity test_ca() {
  identity ca;
  auto kb = memory_bio(embedded_file("fixtures/certs/test-ca.key"));
  ca.key.reset(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  auto cb = memory_bio(embedded_file("fixtures/certs/test-ca.pem"));
  ca.cert.reset(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  if (!ca.key || !ca.cert) throw std::runtime_error("cannot read the test CA: " + openssl_error());
  return ca;
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) throw std::runtime_error("cannot build a certificate extension: " + openssl_error());
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A fresh EC P-256 key and a certificate for cn, signed by issuer (or by itself when null).
// Generating one takes about a millisecond, so start-up stays fast.
identity make_certificate(const std::string& cn, const std::string& san, long from_s, long to_s,
                          const identity* issuer, bool is_ca, long serial) {
  identity id;
  id.key.reset(EVP_EC_gen("P-256"));
  id.cert.reset(X509_new());
  if (!id.key || !id.cert) throw std::runtime_error("cannot generate a key: " + openssl_error());
  X509* c = id.cert.get();
  X509_set_version(c, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
  X509_gmtime_adj(X509_getm_notBefore(c), from_s);
  X509_gmtime_adj(X509_getm_notAfter(c), to_s);
  X509_set_pubkey(c, id.key.get());
  X509_NAME* name = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* issuer_cert = issuer ? issuer->cert.get() : c;
  X509_set_issuer_name(c, X509_get_subject_name(issuer_cert));
  if (is_ca) {
    add_extension(c, issuer_cert, NID_basic_constraints, "critical,CA:TRUE");
  } else {
    add_extension(c, issuer_cert, NID_subject_alt_name, san);
  }
  EVP_PKEY* signer = issuer ? issuer->key.get() : id.key.get();
  if (X509_sign(c, signer, EVP_sha256()) == 0) {
    throw std::runtime_error("cannot sign a certificate: " + openssl_error());
  }
  return id;
}

int protocol_version(const std::string& v) {
  if (v == "1.0") return TLS1_VERSION;
  if (v == "1.1") return TLS1_1_VERSION;
  if (v == "1.3") return TLS1_3_VERSION;
  return TLS1_2_VERSION;
}

std::unique_ptr<ssl::context> server_context(const std::string& min_version) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  const int least = protocol_version(min_version);
  SSL_CTX_set_min_proto_version(native, least);
  if (least < TLS1_2_VERSION) {
    // TLS 1.0 and 1.1 sign the handshake with MD5 and SHA-1, which OpenSSL 3 allows only at
    // security level 0; their CBC suites are not in its default list at the higher levels.
    SSL_CTX_set_security_level(native, 0);
    SSL_CTX_set_cipher_list(native, "DEFAULT:@SECLEVEL=0");
  }
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  return ctx;
}

std::unique_ptr<ssl::context> context_for(const identity& id, const identity* chain,
                                          const std::string& min_version) {
  auto ctx = server_context(min_version);
  if (SSL_CTX_use_certificate(ctx->native_handle(), id.cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx->native_handle(), id.key.get()) != 1) {
    throw std::runtime_error("cannot use a generated certificate: " + openssl_error());
  }
  if (chain) {
    X509_up_ref(chain->cert.get());
    SSL_CTX_add_extra_chain_cert(ctx->native_handle(), chain->cert.get());
  }
  return ctx;
}

// OpenSSL's words for a file that is no PEM at all ("no start line (PEM routines)" for a
// certificate, "unsupported (DECODER routines)" for a key) name neither what the file is nor
// what was expected in it.
std::string pem_file_problem(const std::string& path, const char* expected,
                             const boost::system::error_code& ec) {
  std::error_code fs_ec;
  if (std::filesystem::is_directory(path, fs_ec)) return path + ": a directory, not a PEM file";
  std::ifstream in(path, std::ios::binary);
  std::string head(64 * 1024, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(in.gcount()));
  if (in.gcount() > 0 && head.find("-----BEGIN ") == std::string::npos) {
    return path + ": not a PEM file (no '-----BEGIN " + expected + "-----' line in it)";
  }
  return path + ": " + ec.message();
}

std::optional<certificate_problem> load_certificate_files(ssl::context& ctx,
                                                          const std::string& cert_file,
                                                          const std::string& key_file) {
  if (cert_file.empty() != key_file.empty()) {
    const std::string given = cert_file.empty() ? "tls.key" : "tls.cert";
    return certificate_problem{given, "tls.cert and tls.key go together; " +
                                          std::string(cert_file.empty() ? "tls.cert" : "tls.key") +
                                          " is not set"};
  }
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(cert_file, ec);
  if (ec) return certificate_problem{"tls.cert", pem_file_problem(cert_file, "CERTIFICATE", ec)};
  // Without a callback of its own, OpenSSL asks a terminal for the passphrase of an encrypted
  // key: a server started in one (docker run -it) would wait there without a word.
  bool encrypted = false;
  ctx.set_password_callback([&encrypted](std::size_t, ssl::context::password_purpose) {
    encrypted = true;
    return std::string();
  });
  ctx.use_private_key_file(key_file, ssl::context::pem, ec);
  // The context outlives `encrypted`: no callback of this load's may stay on it.
  ctx.set_password_callback(
      [](std::size_t, ssl::context::password_purpose) { return std::string(); });
  if (encrypted) {
    ERR_clear_error();
    return certificate_problem{
        "tls.key", key_file +
                       " is encrypted (it asks for a passphrase), which the server cannot give; "
                       "give it an unencrypted copy: openssl pkey -in " +
                       key_file + " -out key.pem"};
  }
  if (ec) return certificate_problem{"tls.key", pem_file_problem(key_file, "PRIVATE KEY", ec)};
  // A key of another type (EC for an RSA certificate) loads without complaint into a slot of
  // its own; every handshake would then fail with "no shared cipher".
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    return certificate_problem{"tls.key", key_file + " is not the key of the certificate in " +
                                              cert_file + ": " + openssl_error()};
  }
  return std::nullopt;
}

// The DNS names and addresses a certificate is for ("DNS:mail.test,IP:10.0.0.1"): the
// certificate faults carry them too, so that a client that trusts the test CA meets the fault
// alone (an expired certificate, not also one for another host).
struct general_names_free {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};

std::string names_of(X509* cert) {
  std::string out;
  const std::unique_ptr<GENERAL_NAMES, general_names_free> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names.get(), i);
    if (n->type == GEN_DNS) {
      const auto* text = reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName));
      const std::string name(text, static_cast<std::size_t>(ASN1_STRING_length(n->d.dNSName)));
      // Only what OpenSSL's "DNS:a,IP:b" text can carry as it is (an empty one it refuses).
      if (!name.empty() && name.find_first_of(",:") == std::string::npos) out += ",DNS:" + name;
    } else if (n->type == GEN_IPADD) {
      const int len = ASN1_STRING_length(n->d.iPAddress);
      char text[INET6_ADDRSTRLEN] = {};
      if ((len == 4 || len == 16) &&
          inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(n->d.iPAddress), text,
                    sizeof text)) {
        out += std::string(",IP:") + text;
      }
    }
  }
  return out;
}

}  // namespace

proto::expected<std::unique_ptr<tls_contexts>, certificate_problem> tls_contexts::make(
    const tls_identity& id) {
  using kind = fault::certificate_kind;
  std::unique_ptr<tls_contexts> made(new tls_contexts());
  auto& contexts_ = made->contexts_;
  const identity ca = test_ca();
  // OpenSSL reads "DNS:a,IP:b" text: a hostname that is no DNS name ("h,IP:9.9.9.9", one with a
  // '_') stays out of it rather than add names of its own (it is still the subject's CN).
  std::string san = "DNS:localhost,IP:127.0.0.1,IP:::1";
  if (proto::certificate_name_problem(id.hostname).empty()) san = "DNS:" + id.hostname + "," + san;
  for (const auto& name : id.names)
    san += (is_ip_literal(name) ? ",IP:" : ",DNS:") + name;
  constexpr long day = 24 * 3600;
  if (id.cert_file.empty() && id.key_file.empty()) {
    contexts_[kind::normal] =
        context_for(make_certificate(id.hostname, san, -day, 365 * day, &ca, false, 2), nullptr,
                    id.min_version);
  } else {
    auto ctx = server_context(id.min_version);
    if (auto problem = load_certificate_files(*ctx, id.cert_file, id.key_file)) {
      return proto::unexpected{std::move(*problem)};
    }
    san += names_of(SSL_CTX_get0_certificate(ctx->native_handle()));
    contexts_[kind::normal] = std::move(ctx);
  }
  contexts_[kind::expired] = context_for(
      make_certificate(id.hostname, san, -30 * day, -day, &ca, false, 3), nullptr, id.min_version);
  contexts_[kind::wrong_host] =
      context_for(make_certificate("wrong-host.invalid", "DNS:wrong-host.invalid", -day, 365 * day,
                                   &ca, false, 4),
                  nullptr, id.min_version);
  contexts_[kind::self_signed] =
      context_for(make_certificate(id.hostname, san, -day, 365 * day, nullptr, false, 5), nullptr,
                  id.min_version);
  const identity unknown =
      make_certificate("smtpfault unknown CA", "", -day, 365 * day, nullptr, true, 6);
  // The issuing CA is not sent: the client must fail to find it ("unable to get local issuer").
  contexts_[kind::unknown_ca] =
      context_for(make_certificate(id.hostname, san, -day, 365 * day, &unknown, false, 7), nullptr,
                  id.min_version);
  return made;
}

ssl::context& tls_contexts::get(fault::certificate_kind kind) {
  return *contexts_.at(kind);
}

std::string_view test_ca_pem() {
  return embedded_file("fixtures/certs/test-ca.pem");
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

std::string trust_ca_file(ssl::context& ctx, const std::string& path) {
  boost::system::error_code ec;
  ctx.load_verify_file(path, ec);
  if (!ec) return "";
  std::string from;
  if (!path.starts_with('/')) {
    std::error_code no_cwd;
    from = " (relative to " + std::filesystem::current_path(no_cwd).string() + ")";
  }
  return "cannot load CA file " + path + from + ": " + ec.message();
}

std::string ca_file_problem(const std::string& path) {
  ssl::context scratch(ssl::context::tls_client);
  return trust_ca_file(scratch, path);
}

}  // namespace smtpfault::net
