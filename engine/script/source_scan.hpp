// What a scenario's source says about the API it uses, read when the scenario loads so that a
// slip is named at its line before any client comes: a call of smtp.rejct (no such function),
// or a statement that makes an action and drops it (`smtp.reply(550)` without `return`, which
// would do nothing while the scenario seemed to run).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpfault::script {

// One `smtp.NAME` in the code (outside comments and strings).
struct smtp_reference {
  std::size_t line = 0;
  std::string name;               // "reply"
  bool starts_statement = false;  // nothing before it makes it part of an expression
  bool called = false;            // followed by (, { or a string: a call
  bool assigned = false;          // followed by = (not ==): defined by the scenario
  // Methods called on the action it makes, in order: smtp.reply(550):delay(2):close() gives
  // delay and close (with their lines). Only for a call of a constructor of actions.
  std::vector<std::pair<std::string, std::size_t>> chained;
};

std::vector<smtp_reference> smtp_references(std::string_view code);

struct discarded_action {
  std::size_t line = 0;
  std::string call;  // "smtp.reply"
};

// The first statement that begins with a call of an action constructor (smtp.reply, ...).
std::optional<discarded_action> find_discarded_action(std::string_view code);

// The keys of `params` that the code never names: not as params.KEY, nor as a string literal
// (params["KEY"], smtp.param_number("KEY", 60)); comments do not count. None when the code
// uses the table as a whole (pairs(params), local p = params, params[k]): any key may be read.
std::vector<std::string> params_never_named(std::string_view code,
                                            const std::vector<std::string>& keys);
// The names params_never_named finds that could be keys (words, not text like "5.1.1"): what a
// key the code never names may have been meant as.
std::vector<std::string> params_maybe_named(std::string_view code);

// A bare name called as a function (expct(220)), or through a field or method of the table it
// holds (io.write("x"): the name io), that the code does not define itself: not as a local, a
// function, a parameter, a loop variable or by assignment. It is a global of the library, or a
// slip.
struct global_call {
  std::size_t line = 0;
  std::string name;
};
std::vector<global_call> undefined_calls(std::string_view code);

// require("name") and require "name" with a literal name: what `check` can look for without
// running the script.
struct module_request {
  std::size_t line = 0;
  std::string name;  // as written between the quotes
};
std::vector<module_request> literal_requires(std::string_view code);

// The lines of the `return` statements of the function written on lines first..last, or none
// when another function is written inside it (its returns would be counted as the outer's).
std::vector<std::size_t> return_lines(std::string_view code, std::size_t first, std::size_t last);

}  // namespace smtpfault::script
