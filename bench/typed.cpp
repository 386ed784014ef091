#include "bench/typed.hpp"

#include <future>
#include <memory>
#include <optional>

#include <caf/event_based_actor.hpp>

namespace voxbench {

vox::call_handler bench_handler() {
  vox::service_dispatcher<bench_service> d;
  d.on<bench_echo>([](std::vector<uint8_t> b, vox::responder<bench_service, bench_echo> r) { r.ok(std::move(b)); });
  d.on<bench_generate>([](caf::event_based_actor* self, uint32_t n, vox::tx<int32_t> out,
                          vox::responder<bench_service, bench_generate> r) {
    out.send_all(
      self,
      [i = uint32_t{0}, n]() mutable -> std::optional<int32_t> {
        if (i == n)
          return std::nullopt;
        return static_cast<int32_t>(i++);
      },
      [r](const caf::error&) { r.ok({}); });
  });
  auto typed = d.handler();
  return [typed](vox::incoming_call in, vox::reply_sink sink) {
    if (in.method_id == bench_service::id<bench_echo>() || in.method_id == bench_service::id<bench_generate>())
      typed(std::move(in), std::move(sink));
    else
      echo(std::move(in), std::move(sink));
  };
}

// Typed echo of a 32-byte Vec<u8>, `depth` calls in flight, from one event-based actor.
measurement measure_typed_calls(caf::actor_system& sys, const vox::caller& c, int depth, timing t) {
  std::promise<measurement> done;
  auto fut = done.get_future();
  std::vector<uint8_t> arg(payload_size, 0x5a);
  // `depth` is a spawn argument: CAF 0.17 function actors spawned without arguments hit UB.
  sys.spawn([&done, c, t, arg](caf::event_based_actor* self, int depth) {
    struct state {
      vox::client<bench_service> client;
      clock_type::time_point start, counted_from, end;
      uint64_t ops = 0;
      int inflight = 0;
      bool failed = false;
      std::optional<latency_recorder> latency{}; // one-outstanding rows only
    };
    auto st = std::make_shared<state>(state{vox::client<bench_service>{c}, clock_type::now(), {}, {}});
    if (depth == 1)
      st->latency.emplace(t.measure_s, 250000);
    st->counted_from = st->start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(t.warmup_s));
    st->end = st->counted_from + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(t.measure_s));
    auto fire = std::make_shared<std::function<void()>>();
    *fire = [=, &done] {
      ++st->inflight;
      auto sent = clock_type::now();
      st->client.request<bench_echo>(self, {arg}, [=, &done](caf::expected<bench_echo::result_type> r) {
        auto now = clock_type::now();
        --st->inflight;
        if (!r || !r->is_ok() || r->ok() != arg) {
          st->failed = true;
        } else if (now >= st->counted_from) {
          ++st->ops;
          if (st->latency)
            st->latency->add(now - sent);
        }
        if (!st->failed && now < st->end) {
          (*fire)();
        } else if (st->inflight == 0) {
          measurement m;
          m.ok = !st->failed;
          m.ops = st->ops;
          m.seconds = std::chrono::duration<double>(now - st->counted_from).count();
          if (st->failed)
            m.error = "a typed call failed or returned a wrong echo";
          else if (st->latency)
            m.latency = st->latency->summary();
          done.set_value(m);
          *fire = nullptr;
          self->quit();
        }
      });
    };
    for (int i = 0; i < depth; ++i)
      (*fire)();
  }, depth);
  if (fut.wait_for(std::chrono::duration<double>(t.warmup_s + t.measure_s + 20)) != std::future_status::ready)
    return measurement::failed("no result in time");
  return fut.get();
}

// One generate(n): the server sends n items with credit flow control; we drain and count.
measurement measure_channel_items(caf::actor_system& sys, const vox::caller& c, timing t) {
  const uint32_t n = static_cast<uint32_t>(std::max(10000.0, 50000.0 * t.measure_s));
  vox::client<bench_service> client{c};
  auto [out, in] = vox::channel<int32_t>();
  auto call = std::async(std::launch::async, [&sys, &client, out = out, n] {
    caf::scoped_actor self{sys};
    return client.call<bench_generate>(self, {n, out}, std::chrono::seconds{120});
  });
  auto start = clock_type::now();
  uint64_t got = 0;
  for (;;) {
    auto item = in.recv_for(std::chrono::seconds{20});
    if (!item)
      return measurement::failed("channel: " + vox::describe(item.error()));
    if (!*item)
      break;
    if (**item != static_cast<int32_t>(got))
      return measurement::failed("channel items out of order");
    ++got;
  }
  measurement m;
  m.seconds = seconds_since(start);
  auto r = call.get();
  m.ok = r && r->is_ok() && got == n;
  m.ops = got;
  if (!m.ok)
    m.error = "generate did not complete with every item";
  return m;
}

pending_calls start_pending_channel_calls(caf::actor_system& sys, const std::vector<vox::caller>& callers,
                                          size_t per_connection) {
  pending_calls out;
  std::vector<vox::tx<int32_t>> outs;
  for (size_t i = 0; i < callers.size() * per_connection; ++i) {
    auto [o, in] = vox::channel<int32_t>();
    outs.push_back(o);
    out.ends.push_back(in);
  }
  // One event-based actor makes every call; the Responses come when the sessions end.
  sys.spawn(
    [callers, per_connection](caf::event_based_actor* self, std::vector<vox::tx<int32_t>> outs) {
      for (size_t i = 0; i < outs.size(); ++i) {
        vox::client<bench_service> c{callers[i / per_connection]};
        c.request<bench_generate>(self, {UINT32_MAX, outs[i]}, [](caf::expected<bench_generate::result_type>) {});
      }
    },
    std::move(outs));
  // One item from each: its handler runs and now waits for credit we never give.
  for (auto& in : out.ends) {
    auto item = in.recv_for(std::chrono::seconds{30});
    if (!item || !*item) {
      out.error = "a pending channel call sent no item: " + (item ? std::string{"closed"} : vox::describe(item.error()));
      break;
    }
  }
  return out;
}

} // namespace voxbench
