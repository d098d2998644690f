// The in-memory store: what it keeps within its budgets, and the body buffers it hands back.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "capture/message_store.hpp"

namespace smtpfault::capture {
namespace {

session::message message_of(std::string body) {
  session::message m;
  m.data = std::move(body);
  return m;
}

TEST(retention, newest_messages_within_the_count) {
  message_store store("", 3, 10);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i)
    ids.push_back(store.store(message_of("m" + std::to_string(i)))->id);
  auto kept = store.messages();
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept.front()->id, ids[2]);
  EXPECT_EQ(kept.back()->msg.data, "m4");
  EXPECT_EQ(store.stored_total(), 5u);
  EXPECT_EQ(store.find_message(ids[0]), nullptr);
}

TEST(long_poll_news, each_message_once_and_all_again_after_a_clear) {
  message_store store("", 10, 10);
  auto news = store.messages_after(0, ~std::uint64_t{0});
  EXPECT_TRUE(news.from_start);
  EXPECT_TRUE(news.messages.empty());
  store.store(message_of("a"));
  store.store(message_of("b"));
  news = store.messages_after(news.newest, news.clears);
  ASSERT_EQ(news.messages.size(), 2u);
  EXPECT_FALSE(news.from_start);
  store.store(message_of("c"));
  news = store.messages_after(news.newest, news.clears);
  ASSERT_EQ(news.messages.size(), 1u);  // only what came since the last look
  EXPECT_EQ(news.messages[0]->msg.data, "c");
  news = store.messages_after(news.newest, news.clears);
  EXPECT_TRUE(news.messages.empty());
  store.clear_messages();
  store.store(message_of("d"));
  news = store.messages_after(news.newest, news.clears);
  EXPECT_TRUE(news.from_start);
  ASSERT_EQ(news.messages.size(), 1u);
  EXPECT_EQ(news.messages[0]->msg.data, "d");
}

TEST(retention, newest_messages_within_the_byte_budget_and_always_the_last) {
  message_store store("", 100, 10);
  store.set_max_bytes(250);
  for (int i = 0; i < 4; ++i)
    store.store(message_of(std::string(100, 'a' + i)));
  auto kept = store.messages();
  ASSERT_EQ(kept.size(), 2u);  // 200 octets fit, 300 would not
  EXPECT_EQ(kept.front()->msg.data[0], 'c');
  store.store(message_of(std::string(1000, 'z')));  // over the budget alone: still kept
  ASSERT_EQ(store.messages().size(), 1u);
  EXPECT_EQ(store.messages().front()->msg.data.size(), 1000u);
}

TEST(recycling, the_forgotten_body_buffer_comes_back_to_the_caller) {
  message_store store("", 1, 10);
  std::string body(4000, 'x');
  const char* first_buffer = body.data();
  std::string spare;
  store.store(message_of(std::move(body)), &spare);
  EXPECT_TRUE(spare.empty()) << "nothing was forgotten yet";
  store.store(message_of("second"), &spare);
  EXPECT_EQ(spare.data(), first_buffer) << "the first message's buffer, not a copy";
  EXPECT_EQ(store.messages().front()->msg.data, "second");
}

TEST(recycling, a_message_still_held_by_a_reader_keeps_its_body) {
  message_store store("", 1, 10);
  store.store(message_of(std::string(4000, 'x')));
  auto reader = store.messages();  // e.g. the HTTP API serving it right now
  std::string spare;
  store.store(message_of("next"), &spare);
  EXPECT_TRUE(spare.empty());
  EXPECT_EQ(reader.front()->msg.data, std::string(4000, 'x'));
}

TEST(recycling, large_buffers_are_not_kept_for_idle_sessions) {
  message_store store("", 1, 10);
  store.store(message_of(std::string(64 * 1024, 'x')));
  std::string spare;
  store.store(message_of("next"), &spare);
  EXPECT_TRUE(spare.empty());
}

TEST(retention, sessions_within_their_count) {
  message_store store("", 10, 2);
  for (int i = 0; i < 3; ++i) {
    session_record r;
    r.facts.session_id = "s" + std::to_string(i);
    store.record_session(std::move(r));
  }
  auto kept = store.sessions();
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept.front()->facts.session_id, "s1");
  EXPECT_EQ(store.find_session("s0"), nullptr);
}

namespace fs = std::filesystem;

// A store in a folder of the test's own, removed before and after, with its first message
// stored and the id the next one will get (the count in its last six digits).
struct store_with_one_message {
  fs::path dir;
  message_store store;
  std::shared_ptr<const stored_message> first;
  std::string next;
  explicit store_with_one_message(const std::string& name)
      : dir(fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()))),
        store((fs::remove_all(dir), dir.string()), 10, 10) {
    EXPECT_FALSE(store.prepare());
    first = store.store(message_of("one\r\n"));
    EXPECT_TRUE(first);
    if (first) next = first->id.substr(0, first->id.size() - 6) + "000002";
  }
  ~store_with_one_message() { fs::remove_all(dir); }
};

// A message whose .json cannot be written is refused (451): its .eml, written first, goes too,
// so that the folder holds accepted messages only (it was left behind).
TEST(files, a_message_refused_leaves_no_file_behind) {
  store_with_one_message s("smtpfault-store-test");
  ASSERT_TRUE(s.first);
  auto& store = s.store;
  const auto& dir = s.dir;
  const std::string* first = &s.first->id;
  const std::string& next = s.next;
  // The next id ends in 000002: a folder where its .json's temporary file would go.
  fs::create_directory(dir / (next + ".json.tmp"));
  std::string why;
  EXPECT_FALSE(store.store(message_of("two\r\n"), nullptr, &why));
  EXPECT_NE(why.find(next + ".json.tmp"), std::string::npos) << why;
  EXPECT_FALSE(fs::exists(dir / (next + ".eml")));
  EXPECT_TRUE(fs::exists(dir / (*first + ".eml")));
  EXPECT_TRUE(fs::exists(dir / (*first + ".json")));
}

// Another server storing to the same folder: its message is never replaced, and the id prefix
// holds the process, so that two started in one millisecond do not share ids.
TEST(files, a_file_already_there_is_not_replaced) {
  store_with_one_message s("smtpfault-store-keep");
  ASSERT_TRUE(s.first);
  auto& store = s.store;
  const auto& dir = s.dir;
  const auto& first = s.first;
  const std::string& next = s.next;
  char pid[16];
  std::snprintf(pid, sizeof pid, "-%x-", static_cast<unsigned>(::getpid()));
  EXPECT_NE(first->id.find(pid), std::string::npos) << first->id;
  { std::ofstream(dir / (next + ".eml")) << "the other server's message\r\n"; }
  std::string why;
  EXPECT_FALSE(store.store(message_of("two\r\n"), nullptr, &why));
  EXPECT_NE(why.find("exists already and was not replaced"), std::string::npos) << why;
  std::ifstream kept(dir / (next + ".eml"));
  std::string text((std::istreambuf_iterator<char>(kept)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "the other server's message\r\n");
  EXPECT_FALSE(fs::exists(dir / (next + ".eml.tmp")));
}

}  // namespace
}  // namespace smtpfault::capture
