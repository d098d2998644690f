// Transaction data (reset by RSET, EHLO, STARTTLS) and the delivered message.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "proto/address.hpp"
#include "proto/command.hpp"
#include "proto/data_reader.hpp"

namespace smtpfault::session {

struct recipient {
  proto::mailbox address;
  std::vector<proto::esmtp_param> params;
};

struct envelope {
  proto::mailbox mail_from;
  std::vector<proto::esmtp_param> mail_params;
  std::vector<recipient> recipients;
  bool smtputf8 = false;       // MAIL carried SMTPUTF8
  bool body_8bitmime = false;  // MAIL carried BODY=8BITMIME
};

// Facts about the session a message arrived in, stored with the message.
struct session_facts {
  std::string session_id;
  std::string client_address;  // "127.0.0.1:51234"
  std::string helo;
  bool tls = false;
  std::string tls_version;  // "TLSv1.3"
  std::string tls_cipher;
  std::string auth_user;  // empty when not authenticated
  std::string auth_mechanism;
  bool lmtp = false;
  bool implicit_tls = false;  // it came to the implicit-TLS (smtps) port
  bool early_talker = false;  // sent octets before a greeting held back by a delay or a sleep
};

struct message {
  envelope env;
  session_facts facts;
  std::string data;  // exactly as received after dot-unstuffing
  bool via_bdat = false;
  std::vector<proto::anomaly> anomalies;
  std::chrono::system_clock::time_point received;
};

}  // namespace smtpfault::session
