#include "apps/testbed/testbed_client.hpp"

#include <chrono>
#include <caf/event_based_actor.hpp>
#include <cmath>
#include <future>
#include <limits>
#include <numeric>

namespace vox::testbed {

namespace {

using namespace std::chrono_literals;
using fail = std::optional<std::string>;
constexpr auto timeout = 10s;

/// Calls M and returns its result, or throws the failure text (caught by `guarded`).
template <class M>
typename M::result_type call(scenario_context& ctx, typename M::args_type args) {
  auto r = ctx.testbed.call<M>(ctx.self, std::move(args), timeout);
  if (!r)
    throw std::string{"call failed: "} + describe(r.error());
  return std::move(*r);
}

/// "expected Ok, got Err (VoxError variant N)", with the text of an InvalidPayload (a
/// server's refusal says why there).
template <class E>
std::string unexpected_err(const E& err) {
  auto out = "expected Ok, got Err (VoxError variant " + std::to_string(err.index()) + ")";
  if (const auto* invalid = std::get_if<2>(&err))
    out += ": " + invalid->message;
  return out;
}

template <class M>
typename M::ok_type ok(scenario_context& ctx, typename M::args_type args) {
  auto r = call<M>(ctx, std::move(args));
  if (!r.is_ok())
    throw unexpected_err(r.err());
  return r.ok();
}

template <class M>
typename M::error_type user_err(scenario_context& ctx, typename M::args_type args) {
  auto r = call<M>(ctx, std::move(args));
  if (r.is_ok() || r.err().index() != 0)
    throw std::string{"expected Err(User(_))"};
  return std::get<0>(r.err());
}

void expect(bool cond, const std::string& what) {
  if (!cond)
    throw what;
}

scenario make(std::string name, std::function<void(scenario_context&)> body) {
  return {std::move(name), [body](scenario_context& ctx) -> fail {
            try {
              body(ctx);
              return std::nullopt;
            } catch (const std::string& why) {
              return why;
            }
          }};
}

/// Why a call's result is not Ok, or nothing when it is.
template <class R>
std::optional<std::string> failure_of(const caf::expected<R>& r) {
  if (!r)
    return "call failed: " + describe(r.error());
  if (!r->is_ok())
    return unexpected_err(r->err());
  return std::nullopt;
}

/// Runs the call of `M` with channel arguments on its own thread. If the call fails (say
/// the server does not know the method) the local end `ours` is reset, so that whoever
/// sends or drains it stops at once instead of waiting out the timeout.
template <class M, class End>
auto call_with_channels(scenario_context& ctx, typename M::args_type args, End ours) {
  return std::async(std::launch::async, [&ctx, args = std::move(args), ours] {
    caf::scoped_actor self{ctx.sys};
    auto r = ctx.testbed.call<M>(self, args, timeout);
    if (failure_of(r))
      ours.reset();
    return r;
  });
}

/// Drains `in` (on the calling thread) until Close; nullopt if the channel failed.
template <class T>
std::optional<std::vector<T>> drain(const rx<T>& in) {
  std::vector<T> got;
  for (;;) {
    auto item = in.recv_for(timeout);
    if (!item)
      return std::nullopt;
    if (!*item)
      return got;
    got.push_back(std::move(**item));
  }
}

/// Drains `in` until Close or failure: what arrived before either.
template <class T>
std::vector<T> drain_prefix(const rx<T>& in) {
  std::vector<T> got;
  for (;;) {
    auto item = in.recv_for(timeout);
    if (!item || !*item)
      return got;
    got.push_back(std::move(**item));
  }
}

/// True if `v` is exactly from, from+1, … (empty counts).
bool counts_up(const std::vector<int32_t>& v, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i)
    if (v[i] != static_cast<int32_t>(i - from))
      return false;
  return true;
}

std::string render(const std::vector<int32_t>& v) {
  std::string out;
  for (auto x : v)
    out += (out.empty() ? "" : ",") + std::to_string(x);
  return "[" + out + "]";
}

/// The call's failure first (it explains a failed channel), then the channel's.
template <class R, class V>
void expect_both(const caf::expected<R>& r, const std::optional<V>& channel_ok, const char* what) {
  if (auto why = failure_of(r))
    throw *why;
  expect(channel_ok.has_value(), std::string{what} + " failed");
}

/// Sends from..to on a caller channel to a summing method, returns the total.
template <class M>
int64_t sum_of(scenario_context& ctx, int32_t from, int32_t to) {
  auto [out, in] = channel<int32_t>();
  auto result = call_with_channels<M>(ctx, {in}, out);
  std::optional<bool> sent = true;
  for (int32_t i = from; i <= to && sent; ++i)
    if (!out.send_for(i, timeout))
      sent.reset();
  out.close();
  auto r = result.get();
  expect_both(r, sent, "sending items");
  return r->ok();
}

template <class M>
std::vector<int32_t> generated(scenario_context& ctx, uint32_t count) {
  auto [out, in] = channel<int32_t>();
  auto result = call_with_channels<M>(ctx, {count, out}, in);
  auto got = drain(in); // concurrently with the pending call: its Response comes last
  expect_both(result.get(), got, "receiving items");
  return *got;
}

std::vector<scenario> build() {
  std::vector<scenario> s;
  s.push_back(make("echo", [](auto& c) { ok<m::echo>(c, {"hello from client"}); }));
  s.push_back(make("reverse", [](auto& c) { expect(ok<m::reverse>(c, {"hello"}) == "olleh", "wrong reverse"); }));
  s.push_back(make("divide_success", [](auto& c) { expect(ok<m::divide>(c, {10, 3}) == 3, "10/3 != 3"); }));
  s.push_back(make("divide_zero", [](auto& c) {
    expect(user_err<m::divide>(c, {10, 0}) == math_error::division_by_zero, "expected DivisionByZero");
  }));
  s.push_back(make("divide_overflow", [](auto& c) {
    expect(user_err<m::divide>(c, {std::numeric_limits<int64_t>::min(), -1}) == math_error::overflow,
           "expected Overflow");
  }));
  s.push_back(make("lookup_found", [](auto& c) { expect(ok<m::lookup>(c, {1}).name == "Alice", "not Alice"); }));
  s.push_back(make("lookup_found_no_email", [](auto& c) {
    auto p = ok<m::lookup>(c, {2});
    expect(p.name == "Bob" && !p.email, "not Bob without email");
  }));
  s.push_back(make("lookup_not_found", [](auto& c) {
    expect(user_err<m::lookup>(c, {999}) == lookup_error::not_found, "expected NotFound");
  }));
  s.push_back(make("lookup_access_denied", [](auto& c) {
    expect(user_err<m::lookup>(c, {100}) == lookup_error::access_denied, "expected AccessDenied");
  }));
  s.push_back(make("echo_point", [](auto& c) { expect(ok<m::echo_point>(c, {point{42, -7}}) == point{42, -7}, "point differs"); }));
  s.push_back(make("create_person", [](auto& c) {
    auto p = ok<m::create_person>(c, {"Dave", 40, "dave@example.com"});
    expect(p == person{"Dave", 40, "dave@example.com"}, "Dave differs");
    auto e = ok<m::create_person>(c, {"Eve", 25, std::nullopt});
    expect(e == person{"Eve", 25, std::nullopt}, "Eve differs");
  }));
  s.push_back(make("rectangle_area", [](auto& c) {
    auto a = ok<m::rectangle_area>(c, {rectangle{{0, 10}, {5, 0}, std::nullopt}});
    expect(std::abs(a - 50.0) < 1e-9, "area != 50");
  }));
  s.push_back(make("parse_color", [](auto& c) {
    expect(ok<m::parse_color>(c, {"red"}) == color::red, "red");
    expect(ok<m::parse_color>(c, {"green"}) == color::green, "green");
    expect(ok<m::parse_color>(c, {"blue"}) == color::blue, "blue");
    expect(!ok<m::parse_color>(c, {"purple"}), "purple is not a color");
  }));
  s.push_back(make("get_points", [](auto& c) {
    auto p = ok<m::get_points>(c, {5});
    expect(p.size() == 5 && p[0].x == 0 && p[4].x == 4, "wrong points");
  }));
  s.push_back(make("swap_pair", [](auto& c) {
    expect(ok<m::swap_pair>(c, {std::make_tuple(99, std::string{"hello"})}) == std::make_tuple(std::string{"hello"}, 99),
           "not swapped");
  }));
  s.push_back(make("echo_bytes", [](auto& c) {
    std::vector<uint8_t> b{1, 2, 3, 255, 0, 128};
    expect(ok<m::echo_bytes>(c, {b}) == b, "bytes differ");
  }));
  s.push_back(make("echo_bool", [](auto& c) {
    expect(ok<m::echo_bool>(c, {true}) && !ok<m::echo_bool>(c, {false}), "bool differs");
  }));
  s.push_back(make("echo_u64", [](auto& c) {
    for (uint64_t v : {uint64_t{0}, uint64_t{1}, std::numeric_limits<uint64_t>::max(), uint64_t{1000000000000}})
      expect(ok<m::echo_u64>(c, {v}) == v, "u64 differs");
  }));
  s.push_back(make("echo_option_string", [](auto& c) {
    expect(ok<m::echo_option_string>(c, {std::optional<std::string>{"hello"}}) == std::optional<std::string>{"hello"}, "Some");
    expect(!ok<m::echo_option_string>(c, {std::nullopt}), "None");
  }));
  s.push_back(make("describe_point", [](auto& c) {
    expect(ok<m::describe_point>(c, {"origin", 0, 0, true}) == tagged_point{"origin", 0, 0, true}, "origin");
    expect(ok<m::describe_point>(c, {"far", -100, 200, false}) == tagged_point{"far", -100, 200, false}, "far");
  }));
  s.push_back(make("all_colors", [](auto& c) {
    expect(ok<m::all_colors>(c, {}) == std::vector<color>{color::red, color::green, color::blue}, "colors differ");
  }));
  s.push_back(make("echo_shape", [](auto& c) {
    for (const shape& sh : {shape{point_shape{}}, shape{circle{3.14}}, shape{rect_shape{2.0, 5.0}}})
      expect(ok<m::echo_shape>(c, {sh}) == sh, "shape differs");
  }));
  s.push_back(make("shape_area", [](auto& c) {
    expect(std::abs(ok<m::shape_area>(c, {shape{rect_shape{3.0, 4.0}}}) - 12.0) < 1e-9, "area != 12");
  }));
  s.push_back(make("create_canvas", [](auto& c) {
    std::vector<shape> shapes{shape{point_shape{}}, shape{circle{2.5}}};
    auto cv = ok<m::create_canvas>(c, {"enum-canvas", shapes, color::green});
    expect(cv.name == "enum-canvas" && cv.background == color::green && cv.shapes == shapes, "canvas differs");
  }));
  s.push_back(make("process_message", [](auto& c) {
    auto r = ok<m::process_message>(c, {tb_message{std::in_place_index<2>, std::vector<uint8_t>{1, 2, 3, 4}}});
    expect(r.index() == 2 && std::get<2>(r) == std::vector<uint8_t>{4, 3, 2, 1}, "not reversed data");
  }));
  s.push_back(make("pipelining", [](auto& c) {
    // Ten calls in flight at once from one event-based actor; none waits for another.
    std::promise<std::vector<std::string>> done;
    // `done` is a spawn argument: CAF 0.17 function actors spawned without arguments hit UB.
    c.sys.spawn([&c](caf::event_based_actor* self, std::promise<std::vector<std::string>>* done_ptr) {
      auto& done = *done_ptr;
      auto got = std::make_shared<std::vector<std::string>>(10);
      auto left = std::make_shared<int>(10);
      for (int i = 0; i < 10; ++i)
        c.testbed.template request<m::echo>(self, {"msg" + std::to_string(i)},
          [=, &done](caf::expected<m::echo::result_type> r) {
            (*got)[i] = r && r->is_ok() ? r->ok() : "<failed>";
            if (--*left == 0) {
              done.set_value(*got);
              self->quit();
            }
          }, timeout);
    }, &done);
    auto got = done.get_future().get();
    for (int i = 0; i < 10; ++i)
      expect(got[i] == "msg" + std::to_string(i), "reply " + std::to_string(i) + " is " + got[i]);
  }));
  // The TS harness's "sum" and "generate" check only that the calls succeed; ours check the values too.
  s.push_back(make("sum", [](auto& c) { expect(sum_of<m::sum>(c, 1, 5) == 15, "sum != 15"); }));
  s.push_back(make("sum_client_to_server", [](auto& c) { expect(sum_of<m::sum>(c, 1, 5) == 15, "sum != 15"); }));
  s.push_back(make("sum_large", [](auto& c) { expect(sum_of<m::sum_large>(c, 0, 99) == 4950, "sum != 4950"); }));
  s.push_back(make("generate", [](auto& c) {
    expect(generated<m::generate>(c, 5) == std::vector<int32_t>{0, 1, 2, 3, 4}, "not 0..4");
  }));
  s.push_back(make("generate_large", [](auto& c) {
    std::vector<int32_t> want(100);
    std::iota(want.begin(), want.end(), 0);
    expect(generated<m::generate_large>(c, 100) == want, "not exactly 0..99 in order");
  }));
  s.push_back(make("transform_bidi", [](auto& c) {
    auto [in_tx, in_rx] = channel<std::string>();
    auto [out_tx, out_rx] = channel<std::string>();
    auto result = call_with_channels<m::transform>(c, {in_rx, out_tx}, out_rx);
    std::optional<bool> sent = true;
    for (auto w : {"alpha", "beta", "gamma"})
      if (sent && !in_tx.send_for(std::string{w}, timeout))
        sent.reset();
    in_tx.close();
    auto got = drain(out_rx);
    auto r = result.get();
    expect_both(r, sent, "sending items");
    expect_both(r, got, "receiving items");
    expect(*got == std::vector<std::string>{"alpha", "beta", "gamma"}, "wrong items");
  }));
  // testbed-service.md §4: the server cuts the link after the 20th item; the session
  // resumes. Not idempotent: the call ends Indeterminate and what arrived is a prefix.
  s.push_back(make("channel_retry_non_idem", [](auto& c) {
    auto [out, in] = channel<int32_t>();
    auto result = call_with_channels<m::generate_retry_non_idem>(c, {40, out}, in);
    auto got = drain_prefix(in);
    auto r = result.get();
    expect(static_cast<bool>(r), "call failed: " + (r ? std::string{} : describe(r.error())));
    expect(!r->is_ok() && std::holds_alternative<indeterminate>(r->err()),
           r->is_ok() ? "expected Indeterminate, got Ok (did the server cut the link?)"
                      : "expected Indeterminate, got VoxError variant " + std::to_string(r->err().index()));
    expect(counts_up(got, 0, got.size()), "items are not a prefix 0..k-1: " + render(got));
  }));
  // Idempotent: the call goes out again and runs again; its items arrive on the same end.
  s.push_back(make("channel_retry_idem", [](auto& c) {
    auto [out, in] = channel<int32_t>();
    auto result = call_with_channels<m::generate_retry_idem>(c, {40, out}, in);
    auto got = drain_prefix(in);
    auto r = result.get();
    if (auto why = failure_of(r))
      throw *why;
    size_t restart = 0;
    for (size_t i = 1; i < got.size() && restart == 0; ++i)
      if (got[i] == 0)
        restart = i;
    expect(restart > 0, "no second run (did the server cut the link?): " + render(got));
    expect(counts_up(got, 0, restart) && got.size() - restart == 40 && counts_up(got, restart, got.size()),
           "not 0..k-1 then exactly 0..39: " + render(got));
  }));
  return s;
}

} // namespace

const std::vector<scenario>& scenarios() {
  static const std::vector<scenario> all = build();
  return all;
}

} // namespace vox::testbed
