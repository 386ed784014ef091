#include "actors/session_server.hpp"

#include <caf/send.hpp>

namespace vox {

caf::expected<std::unique_ptr<session_server>> session_server::start(caf::actor_system& sys, config cfg) {
  auto listener = tcp_listener::bind(cfg.host, cfg.port, cfg.links);
  if (!listener)
    return std::move(listener.error());
  std::unique_ptr<session_server> out{new session_server(sys, std::move(cfg), std::move(*listener))};
  out->acceptor_ = std::thread{[srv = out.get()] { srv->accept_loop(); }};
  return out;
}

session_server::session_server(caf::actor_system& sys, config cfg, std::unique_ptr<tcp_listener> listener)
  : sys_(sys), cfg_(std::move(cfg)), listener_(std::move(listener)) {}

session_server::~session_server() { stop(); }

void session_server::reap_finished_locked() {
  for (auto i = jobs_.begin(); i != jobs_.end();) {
    if (i->done) {
      i->thread.join();
      i = jobs_.erase(i);
    } else {
      ++i;
    }
  }
}

void session_server::accept_loop() {
  for (;;) {
    auto lnk = listener_->accept();
    if (!lnk)
      return; // shut down (or the listener failed): nothing more to accept
    std::lock_guard<std::mutex> guard{mtx_};
    reap_finished_locked();
    if (stopped_ || pending_ >= cfg_.max_pending_handshakes) {
      (*lnk)->abort();
      continue;
    }
    auto& job = jobs_.emplace_back();
    job.link = *lnk;
    ++pending_;
    job.thread = std::thread{[this, &job] {
      auto session = accept_session(sys_, job.link, cfg_.options);
      {
        std::lock_guard<std::mutex> guard{mtx_};
        job.done = true; // `job` may be reaped from here on: do not touch it again
        --pending_;
        // The session owns the link now; a finished job must not keep its socket open.
        job.link.reset();
        if (!session)
          return; // the link was aborted; the peer sees its socket close
        ++started_;
        if (stopped_) {
          caf::anon_send(session->actor, stop_atom::value);
          return;
        }
        sessions_.push_back(session->actor);
      }
      if (cfg_.on_session)
        cfg_.on_session(*session);
    }};
  }
}

void session_server::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopped_)
      return;
    stopped_ = true;
    for (auto& job : jobs_)
      if (!job.done)
        job.link->abort();
    for (auto& s : sessions_)
      caf::anon_send(s, stop_atom::value);
    sessions_.clear();
  }
  listener_->shutdown();
  if (acceptor_.joinable())
    acceptor_.join();
  std::list<handshake_job> jobs;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    jobs.swap(jobs_);
  }
  for (auto& job : jobs)
    job.thread.join();
}

} // namespace vox
