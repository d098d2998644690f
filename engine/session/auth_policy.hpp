// Who may authenticate: anyone (the default of a mock), or only configured users.
#pragma once

#include <map>
#include <string>

namespace smtpfault::session {

struct auth_policy {
  std::map<std::string, std::string> users;  // name -> password; empty = accept any

  bool accept_any() const { return users.empty(); }
  bool check_password(const std::string& user, const std::string& password) const;
  // CRAM-MD5: the digest must match HMAC-MD5(password, challenge).
  bool check_cram_md5(const std::string& user, const std::string& digest,
                      const std::string& challenge) const;
  // XOAUTH2: the token is compared like a password.
  bool check_token(const std::string& user, const std::string& token) const;
};

}  // namespace smtpfault::session
