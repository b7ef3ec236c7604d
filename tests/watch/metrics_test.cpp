// The pure parts of tobus-watch --serve: the exposition format, the event counters, the families
// and the --serve address.
#include <doctest/doctest.h>

#include <stdexcept>

#include "tobus/core/error.hpp"
#include "tobus/watch/metrics.hpp"
#include "tobus/watch/serve.hpp"

using namespace tobus;

namespace {

Event event(EventKind kind, std::string module, std::optional<std::int64_t> ms = std::nullopt) {
  Event e;
  e.kind = kind;
  e.module = std::move(module);
  e.duration_ms = ms;
  return e;
}

}  // namespace

TEST_CASE("exposition: HELP and TYPE before the samples, labels escaped, values formatted") {
  std::vector<MetricFamily> f = {
      {"a_total", "Things\\counted\nhere", MetricType::counter, {{"", {{"module", "x\"y\\z\nw"}}, 3}}},
      {"empty", "left out", MetricType::gauge, {}},
      {"g", "A gauge", MetricType::gauge, {{"", {}, 0.5}, {"", {{"type", "t"}, {"k", ""}}, -2}}},
  };
  CHECK(exposition(f) ==
        "# HELP a_total Things\\\\counted\\nhere\n"
        "# TYPE a_total counter\n"
        "a_total{module=\"x\\\"y\\\\z\\nw\"} 3\n"
        "# HELP g A gauge\n"
        "# TYPE g gauge\n"
        "g 0.5\n"
        "g{type=\"t\",k=\"\"} -2\n");
  CHECK_THROWS_AS(exposition({{"1bad", "", MetricType::gauge, {{"", {}, 1}}}}), std::logic_error);
  CHECK_THROWS_AS(exposition({{"ok", "", MetricType::gauge, {{"", {{"__x", "v"}}, 1}}}}), std::logic_error);
}

TEST_CASE("metric and label names") {
  CHECK(valid_metric_name("tobus_module_pending"));
  CHECK(valid_metric_name("a:b_c9"));
  CHECK_FALSE(valid_metric_name(""));
  CHECK_FALSE(valid_metric_name("9a"));
  CHECK_FALSE(valid_metric_name("a-b"));
  CHECK(valid_label_name("module"));
  CHECK_FALSE(valid_label_name("a:b"));
  CHECK_FALSE(valid_label_name("__name__"));
  CHECK_FALSE(valid_label_name("0a"));
}

TEST_CASE("sample values") {
  CHECK(format_metric_value(0) == "0");
  CHECK(format_metric_value(12345678901) == "12345678901");
  CHECK(format_metric_value(0.25) == "0.25");
  CHECK(format_metric_value(1.0 / 0.0) == "+Inf");
  CHECK(format_metric_value(-1.0 / 0.0) == "-Inf");
  CHECK(format_metric_value(0.0 / 0.0) == "NaN");
}

TEST_CASE("event counters: dead letters and durations per module, bounded") {
  EventCounters c(2);
  c.add(event(EventKind::handled, "a", 3));
  c.add(event(EventKind::handled, "a", 700));
  c.add(event(EventKind::failed, "a", 400'000));  // above the last bucket: +Inf only
  c.add(event(EventKind::handled, "a"));          // no duration: not observed
  c.add(event(EventKind::routed, "b", 5));        // not a hop's end
  c.add(event(EventKind::dead, "b"));
  c.add(event(EventKind::dead, ""));  // unroutable: counted in the total only
  c.add(event(EventKind::dead, "\xff\n\"x"));  // no module's name: the total only
  c.add(event(EventKind::dead, "c"));  // past the cap of 2 modules
  c.add(event(EventKind::handled, "c", 1));
  EventFigures f = c.figures();
  REQUIRE(f.modules.size() == 2);
  CHECK(f.dead_lettered == 4);
  CHECK(f.dropped_events == 2);
  CHECK(f.modules["b"].dead_lettered == 1);
  const DurationHistogram& h = f.modules["a"].durations;
  CHECK(h.count == 3);
  CHECK(h.sum_ms == 400'703);
  CHECK(h.buckets[0] == 1);  // 0.005
  CHECK(h.buckets[7] == 1);  // 1
}

TEST_CASE("families: every module's series, cumulative buckets ending at the count") {
  BusFigures bus;
  bus.redis_up = true;
  bus.dead = 4;
  bus.modules.push_back({"m", 7, 4, 2, 1, 1, 10, 3, 1});
  bus.types.emplace_back("t", 2);
  EventFigures ev;
  ev.modules["m"].durations.observe(20);
  ev.modules["m"].durations.observe(2000);
  ev.modules["m"].dead_lettered = 2;
  std::string text = exposition(metric_families(bus, ev, 1000, 1000));
  CHECK(text.find("tobus_redis_up 1\n") != std::string::npos);
  CHECK(text.find("tobus_module_messages_handled_total{module=\"m\"} 10\n") != std::string::npos);
  CHECK(text.find("tobus_module_messages_failed_total{module=\"m\"} 3\n") != std::string::npos);
  CHECK(text.find("tobus_module_messages_retried_total{module=\"m\"} 1\n") != std::string::npos);
  CHECK(text.find("tobus_module_dead_lettered_total{module=\"m\"} 2\n") != std::string::npos);
  CHECK(text.find("tobus_module_inbox_length{module=\"m\"} 7\n") != std::string::npos);
  CHECK(text.find("tobus_module_lag{module=\"m\"} 4\n") != std::string::npos);
  CHECK(text.find("tobus_module_pending{module=\"m\"} 2\n") != std::string::npos);
  CHECK(text.find("tobus_module_instances{module=\"m\"} 1\n") != std::string::npos);
  CHECK(text.find("tobus_module_jobs_in_flight{module=\"m\"} 1\n") != std::string::npos);
  CHECK(text.find("tobus_module_handler_duration_seconds_bucket{module=\"m\",le=\"0.01\"} 0\n") != std::string::npos);
  CHECK(text.find("tobus_module_handler_duration_seconds_bucket{module=\"m\",le=\"0.025\"} 1\n") != std::string::npos);
  CHECK(text.find("tobus_module_handler_duration_seconds_bucket{module=\"m\",le=\"2.5\"} 2\n") != std::string::npos);
  CHECK(text.find("tobus_module_handler_duration_seconds_bucket{module=\"m\",le=\"+Inf\"} 2\n") != std::string::npos);
  CHECK(text.find("tobus_module_handler_duration_seconds_sum{module=\"m\"} 2.02\n") != std::string::npos);
  CHECK(text.find("tobus_module_handler_duration_seconds_count{module=\"m\"} 2\n") != std::string::npos);
  CHECK(text.find("tobus_dead_letters 4\n") != std::string::npos);
  CHECK(text.find("tobus_type_members{type=\"t\"} 2\n") != std::string::npos);

  // Redis down: what the events counted is still served, the gauges are not.
  BusFigures down;
  text = exposition(metric_families(down, ev, 1000, 1000));
  CHECK(text.find("tobus_redis_up 0\n") != std::string::npos);
  CHECK(text.find("tobus_module_inbox_length") == std::string::npos);
  CHECK(text.find("tobus_module_dead_lettered_total{module=\"m\"} 2\n") != std::string::npos);
}

TEST_CASE("--serve addresses: the loopback unless an address is given") {
  ServeAddress a = parse_serve_address("9100");
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 9100);
  CHECK(parse_serve_address("0.0.0.0:80").display() == "0.0.0.0:80");
  CHECK(parse_serve_address("[::]:9100").display() == "[::]:9100");
  CHECK(parse_serve_address("[::1]:0").host == "::1");
  CHECK(parse_serve_address("localhost:1").host == "127.0.0.1");
  for (const char* bad : {"", "x", "65536", "-1", "1.2.3:80", "::1:80", "[1.2.3.4]:80", "host.example:80", ":80",
                          "127.0.0.1:", "127.0.0.1:http"}) {
    CAPTURE(bad);
    try {
      parse_serve_address(bad);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::usage);
    }
  }
}
