// Typed services on top of the connection drivers: a dispatcher that turns a service
// declaration (protocol/service.hpp) plus method implementations into a call_handler, and a
// client that makes typed calls from event-based actors or blocking code.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/authorization.hpp"
#include "actors/channel.hpp"
#include "actors/channel_call.hpp"
#include "actors/operation_store.hpp"
#include "actors/handles.hpp"
#include "actors/io.hpp"
#include "protocol/service.hpp"

namespace vox {

/// Answers one call of method `M`. Copyable; the first answer wins (see reply_sink).
template <class Service, class M>
class responder {
public:
  explicit responder(reply_sink sink, vox::metadata call_metadata = {})
    : sink_(std::move(sink)), call_metadata_(std::move(call_metadata)) {}

  /// The metadata the caller attached to this call (flags included).
  const vox::metadata& call_metadata() const { return call_metadata_; }

  void ok(typename M::ok_type value) const {
    send(typename M::result_type{std::in_place_index<0>, std::move(value)});
  }

  /// Err(User(e)).
  void err(typename M::error_type e) const {
    send(typename M::result_type{std::in_place_index<1>,
                                 vox_error<typename M::error_type>{std::in_place_index<0>, std::move(e)}});
  }

  /// Err(VoxError) with a runtime failure kind, e.g. `fail(vox_error<E>{invalid_payload{"…"}})`.
  void fail(vox_error<typename M::error_type> e) const {
    send(typename M::result_type{std::in_place_index<1>, std::move(e)});
  }

  /// Sends `r` with response metadata `md`.
  void send(const typename M::result_type& r, vox::metadata md = {}) const {
    sink_.reply(payload{encode(r)}, std::move(md), &Service::template schemas<M>().response);
  }

  const reply_sink& sink() const { return sink_; }

private:
  reply_sink sink_;
  vox::metadata call_metadata_;
};

/// Per-call options of a typed call.
struct call_options {
  vox::metadata metadata; ///< sent with the Call
  /// Nonzero: the call can be cancelled with `client::cancel(tag)` while it is
  /// outstanding. Unique among the connection's outstanding calls (see new_cancel_tag).
  uint64_t cancel_tag = 0;
};

/// A process-wide fresh cancel tag.
inline uint64_t new_cancel_tag() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1);
}

/// Builds the call_handler of a service from one function per method. A method without an
/// implementation answers UnknownMethod, as does an unknown method id; arguments that do
/// not decode answer InvalidPayload and the connection stays open (r[rpc.error.scope]).
///
///   service_dispatcher<calculator> d;
///   d.on<add>([](int64_t a, int64_t b, responder<calculator, add> r) { r.ok(a + b); });
///   d.on<squares>([](caf::event_based_actor* self, uint32_t n, tx<int64_t> out, responder<…> r) { … });
///
/// A method without channels is handled in the connection's driver actor: answer at once,
/// or keep the responder and answer later, but never block. A method with channels is
/// handled in an event-based actor of its own, spawned per call and passed first: use
/// its channel ends from there with the event-based API (for_each, send_all, …); the
/// actor lives as long as it waits for something. No thread is ever started for a call.
/// A handler that throws is logged once with the method's name; the caller gets Cancelled.
template <class Service>
class service_dispatcher {
public:
  /// Registers the handler `fn` of method `M`: `fn(args..., responder<Service, M>)`, or
  /// `fn(caf::event_based_actor*, args..., responder<Service, M>)` if `M` has channels.
  template <class M, class F>
  service_dispatcher& on(F fn) {
    auto id = Service::template id<M>();
    (*table_)[id] = [fn = std::move(fn)](incoming_call& in, reply_sink sink) {
      sink.describe_response(&Service::template schemas<M>().response, {M::idempotent, M::persistent});
      responder<Service, M> r{std::move(sink), std::move(in.metadata)};
      // Tx/Rx arguments become channels of this connection while they are decoded (the
      // driver set up the binding around this call).
      auto args = decode<typename M::args_type>(in.args);
      if (!args) {
        // r[impl rpc.error.scope]
        r.fail(vox_error<typename M::error_type>{std::in_place_index<2>,
                                                 invalid_payload{describe(args.error())}});
        return;
      }
      static const std::string label = std::string{Service::name} + "." + std::string{M::name};
      if constexpr (M::has_channels) {
        static_assert(takes_actor<F, typename M::args_type, responder<Service, M>>::value,
                      "a handler of a method with channels takes caf::event_based_actor* first: it runs in "
                      "an actor of its own, where its channel ends are used without blocking");
        detail::spawn_channel_call(*in.system, in.log, label,
                                   [fn, r, xs = std::move(*args)](caf::event_based_actor* self) mutable {
                                     std::apply([&](auto&... x) { fn(self, std::move(x)..., r); }, xs);
                                   });
      } else {
        try {
          std::apply([&](auto&... xs) { fn(std::move(xs)..., std::move(r)); }, *args);
        } catch (...) {
          detail::report_handler_exception(in.log, label, std::current_exception());
        }
      }
    };
    return *this;
  }

  /// Runs `check` on every call of `M` before its handler (and before its arguments are
  /// decoded); a refusal answers `Err(InvalidPayload("unauthorized: <reason>"))` with
  /// response metadata `vox-error` = "unauthorized", and the handler never runs:
  ///
  ///   d.require<delete_all>(vox::check_metadata(vox::bearer_token(admin_token)));
  template <class M>
  service_dispatcher& require(call_check check) {
    checks_->per_method[Service::template id<M>()].push_back(std::move(check));
    return *this;
  }

  /// `require` for every method, unknown ones included.
  service_dispatcher& require_all(call_check check) {
    checks_->all.push_back(std::move(check));
    return *this;
  }

  /// The handler to give a session (root_handler) or an accepted connection.
  call_handler handler() const {
    return [table = table_, checks = checks_](incoming_call in, reply_sink sink) {
      if (auto refusal = checks->refusal(in)) {
        refuse_call(sink, *refusal);
        return;
      }
      auto i = table->find(in.method_id);
      if (i == table->end()) {
        sink.reply(unknown_method_response());
        return;
      }
      i->second(in, std::move(sink));
    };
  }

private:
  template <class F, class Args, class R>
  struct takes_actor;
  template <class F, class... Args, class R>
  struct takes_actor<F, std::tuple<Args...>, R> : std::is_invocable<F&, caf::event_based_actor*, Args..., R> {};

  using entry = std::function<void(incoming_call&, reply_sink)>;
  std::shared_ptr<std::unordered_map<method_id_t, entry>> table_
    = std::make_shared<std::unordered_map<method_id_t, entry>>();

  struct call_checks {
    std::vector<call_check> all;
    std::unordered_map<method_id_t, std::vector<call_check>> per_method;

    std::optional<std::string> refusal(const incoming_call& in) const {
      for (const auto& c : all)
        if (auto why = c(in))
          return why;
      if (auto i = per_method.find(in.method_id); i != per_method.end())
        for (const auto& c : i->second)
          if (auto why = c(in))
            return why;
      return std::nullopt;
    }
  };
  std::shared_ptr<call_checks> checks_ = std::make_shared<call_checks>();
};

/// Makes typed calls of `Service` on one connection.
template <class Service>
class client {
public:
  explicit client(caller c) : caller_(std::move(c)) {}

  const caller& get_caller() const { return caller_; }

  /// Metadata sent with every call of this client (and its copies), after each call's
  /// own: credentials, say (`vox::bearer_metadata(token)`).
  client& with_metadata(vox::metadata md) {
    defaults_ = std::make_shared<const vox::metadata>(std::move(md));
    return *this;
  }

  /// The message to send to `driver()` for a call of `M` (schemas attached as needed).
  /// Channel ends among the arguments are bound to this connection here.
  /// Fails if a channel end among them was already used in another call.
  template <class M>
  caf::expected<outgoing_call> make_call(const typename M::args_type& args, call_options opts = {}) const {
    detail::channel_binder binder{caller_.connection().channels, caller_.driver()};
    detail::binder_scope scope{binder};
    outgoing_call out{Service::template id<M>(), std::move(opts.metadata), payload{encode(args)},
                      &Service::template schemas<M>().args, {}, opts.cancel_tag};
    if (defaults_)
      out.metadata.insert(out.metadata.end(), defaults_->begin(), defaults_->end());
    if constexpr (M::has_channels) // what the peer and our driver do with it after a resume
      out.metadata.push_back(metadata_entry{
        channel_retry_mode_key,
        static_cast<uint64_t>(M::idempotent ? channel_retry_mode::idem : channel_retry_mode::non_idem),
        metadata_flags::none});
    if (binder.failed) {
      auto err = make_error(errc::invalid_request, "a channel end in the arguments is already bound to a call");
      for (auto& end : binder.ends)
        end->abandon(err); // the call never goes out: nothing may wait for it
      return err;
    }
    out.channels = std::move(binder.declared);
    out.generation = binder.generation;
    out.channel_offsets = std::move(binder.offsets);
    return out;
  }

  /// Decodes the `ret` of a Response to a call of `M`.
  template <class M>
  static caf::expected<typename M::result_type> decode_result(const call_response& r) {
    return decode<typename M::result_type>(r.ret);
  }

  /// From an event-based actor: calls `M` and passes the decoded result (or the failure)
  /// to `done`.
  template <class M, class Self, class F, class Timeout = caf::duration>
  void request(Self* self, typename M::args_type args, F done, Timeout timeout = caf::infinite,
               call_options opts = {}) const {
    auto call = make_call<M>(args, std::move(opts));
    if (!call) {
      done(caf::expected<typename M::result_type>{std::move(call.error())});
      return;
    }
    self->request(caller_.driver(), timeout, call_atom::value, std::move(*call))
      .then([done](call_response& r) mutable { done(decode_result<M>(r)); },
            [done](caf::error& e) mutable { done(caf::expected<typename M::result_type>{std::move(e)}); });
  }

  /// From blocking code: calls `M` and waits for its result.
  template <class M, class Timeout = caf::duration>
  caf::expected<typename M::result_type> call(caf::scoped_actor& self, typename M::args_type args,
                                              Timeout timeout = caf::infinite, call_options opts = {}) const {
    if (auto refused = refuse_on_io_thread("a blocking call"))
      return refused;
    auto call = make_call<M>(args, std::move(opts));
    if (!call)
      return std::move(call.error());
    caf::expected<typename M::result_type> out = caf::error{};
    self->request(caller_.driver(), timeout, call_atom::value, std::move(*call))
      .receive([&](call_response& r) { out = decode_result<M>(r); },
               [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  /// Cancels the outstanding call made with `tag` (call_options::cancel_tag): Cancel goes
  /// to the peer and the call fails with errc::cancelled; a late Response is ignored.
  void cancel(uint64_t tag) const { caf::anon_send(caller_.driver(), cancel_atom::value, tag); }

private:
  caller caller_;
  std::shared_ptr<const vox::metadata> defaults_;
};

} // namespace vox
