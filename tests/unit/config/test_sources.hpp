// Files and environments for the configuration tests: each test writes its own, so tests stay
// independent and need no checked-in fixtures.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "config/loader.hpp"

namespace smtpfault::config {

// A folder of its own per test, removed afterwards.
class config_files : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("smtpfault_config_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const auto path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  std::filesystem::path dir_;
};

// The message of a refused configuration, "<no error>" when it was taken.
inline std::string error_of(const proto::expected<bool, config_error>& r) {
  return r ? std::string("<no error>") : r.error().message;
}

// Builds a NULL-terminated environ array that owns its strings.
class fake_env {
 public:
  fake_env(std::initializer_list<std::string> entries) : strings_(entries) {
    for (auto& s : strings_) {
      pointers_.push_back(s.data());
    }
    pointers_.push_back(nullptr);
  }
  char** get() { return pointers_.data(); }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> pointers_;
};

}  // namespace smtpfault::config
