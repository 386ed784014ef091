// The Testbed server behaviour of testbed-service.md §3. Channel methods run in an
// event-based actor per call: no thread waits for items or credit.
#include <algorithm>
#include <cmath>
#include <limits>

#include "actors/service.hpp"
#include "apps/testbed/testbed_types.hpp"

namespace vox::testbed {

namespace {

template <class M>
using reply = responder<service_type, M>;

/// Reverses by Unicode scalar values (the input is valid UTF-8: the decoder checked).
std::string reverse_utf8(const std::string& s) {
  std::vector<std::string> scalars;
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : 4;
    scalars.push_back(s.substr(i, len));
    i += len;
  }
  std::string out;
  for (auto i = scalars.rbegin(); i != scalars.rend(); ++i)
    out += *i;
  return out;
}

/// Adds every item of `in`, then answers with the total (a Reset or failure ends it early,
/// as in Rust).
template <class M>
void sum_into(caf::event_based_actor* self, const rx<int32_t>& in, reply<M> r) {
  auto total = std::make_shared<int64_t>(0);
  in.for_each(self, [total](int32_t v) { *total += v; }, [total, r](const caf::error&) { r.ok(*total); });
}

/// Sends 0..count-1, then Close, then the Response: Close goes on the wire first.
template <class M>
void send_range(caf::event_based_actor* self, uint32_t count, const tx<int32_t>& out, reply<M> r,
                std::shared_ptr<item_breaker> breaker = nullptr) {
  out.send_all(
    self, [i = uint32_t{0}, count, breaker]() mutable -> std::optional<int32_t> {
      if (i == count)
        return std::nullopt;
      if (breaker)
        breaker->item(service_type::id<M>(), i);
      return static_cast<int32_t>(i++);
    },
    [r](const caf::error&) { r.ok({}); });
}

/// Sends every string of `in` back unchanged, one by one, waiting for credit before it
/// takes the next item. Send errors are ignored, as the reference does; the Response
/// follows Close.
struct transform_loop : std::enable_shared_from_this<transform_loop> {
  transform_loop(caf::event_based_actor* s, rx<std::string> i, tx<std::string> o, reply<m::transform> rp)
    : self(s), in(std::move(i)), out(std::move(o)), r(std::move(rp)) {}
  caf::event_based_actor* self;
  rx<std::string> in;
  tx<std::string> out;
  reply<m::transform> r;

  void step() {
    in.next(self, [loop = shared_from_this()](caf::expected<std::optional<std::string>> item) {
      if (!item || !*item) {
        loop->out.close();
        loop->r.ok({});
        return;
      }
      loop->out.when_ready(loop->self, [loop, s = std::move(**item)](const caf::error& err) {
        if (!err)
          loop->out.try_send(s);
        loop->step();
      });
    });
  }
};

template <class M>
auto echo_back() {
  return [](auto value, reply<M> r) { r.ok(std::move(value)); };
}

} // namespace

call_handler make_handler(std::shared_ptr<item_breaker> breaker) {
  service_dispatcher<service_type> d;
  d.on<m::echo>(echo_back<m::echo>());
  d.on<m::reverse>([](std::string s, reply<m::reverse> r) { r.ok(reverse_utf8(s)); });
  d.on<m::divide>([](int64_t a, int64_t b, reply<m::divide> r) {
    if (b == 0)
      r.err(math_error::division_by_zero);
    else if (a == std::numeric_limits<int64_t>::min() && b == -1)
      r.err(math_error::overflow);
    else
      r.ok(a / b);
  });
  d.on<m::lookup>([](uint32_t id, reply<m::lookup> r) {
    if (id == 1)
      r.ok(person{"Alice", 30, "alice@example.com"});
    else if (id == 2)
      r.ok(person{"Bob", 25, std::nullopt});
    else if (id == 3)
      r.ok(person{"Charlie", 35, "charlie@example.com"});
    else if (id >= 100 && id <= 199)
      r.err(lookup_error::access_denied);
    else
      r.err(lookup_error::not_found);
  });
  d.on<m::sum>([](caf::event_based_actor* self, rx<int32_t> in, reply<m::sum> r) { sum_into(self, in, r); });
  d.on<m::sum_large>(
    [](caf::event_based_actor* self, rx<int32_t> in, reply<m::sum_large> r) { sum_into(self, in, r); });
  d.on<m::generate>([](caf::event_based_actor* self, uint32_t n, tx<int32_t> out, reply<m::generate> r) {
    send_range(self, n, out, r);
  });
  d.on<m::generate_large>(
    [](caf::event_based_actor* self, uint32_t n, tx<int32_t> out, reply<m::generate_large> r) {
      send_range(self, n, out, r);
    });
  d.on<m::generate_retry_non_idem>(
    [breaker](caf::event_based_actor* self, uint32_t n, tx<int32_t> out, reply<m::generate_retry_non_idem> r) {
      send_range(self, n, out, r, breaker);
    });
  d.on<m::generate_retry_idem>(
    [breaker](caf::event_based_actor* self, uint32_t n, tx<int32_t> out, reply<m::generate_retry_idem> r) {
      send_range(self, n, out, r, breaker);
    });
  d.on<m::transform>(
    [](caf::event_based_actor* self, rx<std::string> in, tx<std::string> out, reply<m::transform> r) {
      std::make_shared<transform_loop>(self, std::move(in), std::move(out), std::move(r))->step();
    });
  d.on<m::echo_point>(echo_back<m::echo_point>());
  d.on<m::create_person>([](std::string name, uint8_t age, std::optional<std::string> email, reply<m::create_person> r) {
    r.ok(person{std::move(name), age, std::move(email)});
  });
  d.on<m::rectangle_area>([](rectangle rc, reply<m::rectangle_area> r) {
    // 64-bit, where Rust subtracts in i32.
    auto w = std::abs(int64_t{rc.bottom_right.x} - rc.top_left.x);
    auto h = std::abs(int64_t{rc.bottom_right.y} - rc.top_left.y);
    r.ok(static_cast<double>(w) * static_cast<double>(h));
  });
  d.on<m::parse_color>([](std::string name, reply<m::parse_color> r) {
    for (auto& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "red")
      r.ok(color::red);
    else if (name == "green")
      r.ok(color::green);
    else if (name == "blue")
      r.ok(color::blue);
    else
      r.ok(std::nullopt);
  });
  d.on<m::shape_area>([](shape s, reply<m::shape_area> r) {
    if (auto* c = std::get_if<circle>(&s))
      r.ok(M_PI * c->radius * c->radius);
    else if (auto* rs = std::get_if<rect_shape>(&s))
      r.ok(rs->width * rs->height);
    else
      r.ok(0.0);
  });
  d.on<m::create_canvas>([](std::string name, std::vector<shape> shapes, color bg, reply<m::create_canvas> r) {
    r.ok(canvas{std::move(name), std::move(shapes), bg});
  });
  d.on<m::process_message>([](tb_message msg, reply<m::process_message> r) {
    if (auto* t = std::get_if<0>(&msg))
      r.ok(tb_message{std::in_place_index<0>, "processed: " + *t});
    else if (auto* n = std::get_if<1>(&msg))
      r.ok(tb_message{std::in_place_index<1>, *n * 2});
    else
      r.ok(tb_message{std::in_place_index<2>, std::vector<uint8_t>(std::get<2>(msg).rbegin(), std::get<2>(msg).rend())});
  });
  d.on<m::get_points>([](uint32_t n, reply<m::get_points> r) {
    std::vector<point> out;
    for (uint32_t i = 0; i < n; ++i)
      out.push_back(point{static_cast<int32_t>(i), static_cast<int32_t>(2 * i)});
    r.ok(std::move(out));
  });
  d.on<m::swap_pair>([](std::tuple<int32_t, std::string> p, reply<m::swap_pair> r) {
    r.ok({std::get<1>(p), std::get<0>(p)});
  });
  d.on<m::echo_bytes>(echo_back<m::echo_bytes>());
  d.on<m::echo_bool>(echo_back<m::echo_bool>());
  d.on<m::echo_u64>(echo_back<m::echo_u64>());
  d.on<m::echo_option_string>(echo_back<m::echo_option_string>());
  d.on<m::all_colors>([](reply<m::all_colors> r) { r.ok({color::red, color::green, color::blue}); });
  d.on<m::describe_point>([](std::string label, int32_t x, int32_t y, bool active, reply<m::describe_point> r) {
    r.ok(tagged_point{std::move(label), x, y, active});
  });
  d.on<m::echo_shape>(echo_back<m::echo_shape>());
  d.on<m::echo_status_v1>(echo_back<m::echo_status_v1>());
  d.on<m::echo_tag_v1>(echo_back<m::echo_tag_v1>());
  d.on<m::echo_profile>(echo_back<m::echo_profile>());
  d.on<m::echo_record>(echo_back<m::echo_record>());
  d.on<m::echo_status>(echo_back<m::echo_status>());
  d.on<m::echo_tag>(echo_back<m::echo_tag>());
  d.on<m::echo_measurement>(echo_back<m::echo_measurement>());
  d.on<m::echo_config>(echo_back<m::echo_config>());
  return d.handler();
}

void item_breaker::accepted(link_ptr lnk) {
  std::lock_guard<std::mutex> guard{mtx_};
  latest_ = std::move(lnk);
}

void item_breaker::item(method_id_t method, uint32_t index) {
  if (index != after)
    return; // items 0 .. after-1 went out before this one
  link_ptr victim;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (std::find(broken_.begin(), broken_.end(), method) != broken_.end())
      return;
    broken_.push_back(method);
    victim = latest_;
  }
  if (victim)
    victim->abort();
}

session_options serving_options(std::shared_ptr<item_breaker> breaker) {
  session_options opts;
  auto handler = make_handler(std::move(breaker));
  opts.root_handler = handler;
  opts.acceptor = [handler](connection_id, const connection_settings& peer, const metadata&)
    -> std::variant<accept_connection, reject_connection> {
    return accept_connection{{opposite(peer.parity), 64}, {}, handler, {}};
  };
  return opts;
}

} // namespace vox::testbed
