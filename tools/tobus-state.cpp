// tobus-state: state records, the module registry, jobs and dead letters, from the shell.
#include <unistd.h>

#include "tobus/state/state.hpp"
#include "tobus/tobus.hpp"

int main(int argc, char** argv) {
  tobus::Program program("tobus-state", "Read and write state records; show modules, jobs and dead letters.");
  auto& app = program.app();
  tobus::StateOptions o;
  // Common options may come after the verb too: tobus-state get NAME -r URL.
  app.fallthrough();
  const std::string json_help = "Print JSON instead of plain text";
  auto verb = [&](const char* name, tobus::StateVerb v, const char* help, CLI::App* parent = nullptr) {
    auto* sub = (parent ? parent : &app)->add_subcommand(name, help);
    sub->callback([&o, v] { o.verb = v; });
    return sub;
  };

  auto* get = verb("get", tobus::StateVerb::get, "Print a record, or one field's value (exit 1: not found)");
  get->add_option("NAME", o.name, "The record")->required();
  get->add_option("FIELD", o.args, "Print only this field's value")->expected(0, 1);
  get->add_flag("--json", o.json, json_help);

  auto* set = verb("set", tobus::StateVerb::set, "Set fields of a record");
  set->add_option("NAME", o.name, "The record")->required();
  set->add_option("FIELD=VALUE", o.args, "Fields to set")->required();

  auto* del = verb("del", tobus::StateVerb::del, "Delete fields, or the whole record (exit 1: none)");
  del->add_option("NAME", o.name, "The record")->required();
  del->add_option("FIELD", o.args, "Fields to delete (none: the whole record)");

  auto* list = verb("list", tobus::StateVerb::list, "List record names matching a glob");
  list->add_option("PATTERN", o.pattern, "Glob over names (default: *)");
  list->add_flag("--json", o.json, json_help);

  auto* cas = verb("cas", tobus::StateVerb::cas, "Compare-and-set a field (exit 1: lost)");
  cas->add_option("NAME", o.name, "The record")->required();
  cas->add_option("FIELD", o.field, "The field")->required();
  cas->add_option("EXPECTED", o.expected, "Its value now ('': absent or empty)")->required();
  cas->add_option("NEW", o.desired, "The value to set")->required();

  auto* incr = verb("incr", tobus::StateVerb::incr, "Add N (default 1) to an integer field; print the result");
  incr->add_option("NAME", o.name, "The record")->required();
  incr->add_option("FIELD", o.field, "The field")->required();
  incr->add_option("N", o.by, "The amount, may be negative");

  auto* wait = verb("wait", tobus::StateVerb::wait, "Wait until FIELD has VALUE (exit 124: timeout)");
  wait->add_option("NAME", o.name, "The record")->required();
  wait->add_option("FIELD=VALUE", o.args, "The condition ('FIELD=': absent or empty)")->required()->expected(1);
  tobus::add_duration_option(*wait, "--timeout", [&o](tobus::Millis d) { o.timeout = d; },
                             "Give up after this long (default: wait forever)");

  auto* watch = verb("watch", tobus::StateVerb::watch, "Print changes to records as they happen");
  watch->add_option("PATTERN", o.pattern, "Glob over names (default: *)");
  watch->add_flag("--json", o.json, json_help);

  auto* modules = verb("modules", tobus::StateVerb::modules, "List modules: instances, inbox, pending");
  modules->add_flag("--json", o.json, json_help);
  modules->add_flag("--names", o.names_only, "Print only the names, one per line (bounded to a second)")
      ->excludes("--json");

  auto* types = verb("types", tobus::StateVerb::types, "List the types modules joined, with their modules");
  types->add_flag("--json", o.json, json_help);
  types->add_flag("--names", o.names_only, "Print only the names, one per line (bounded to a second)")
      ->excludes("--json");

  auto* jobs = verb("jobs", tobus::StateVerb::jobs, "List job records, most recent first");
  jobs->add_option("MODULE", o.module, "Only the jobs of this module");
  jobs->add_flag("--json", o.json, json_help);

  auto* dead = app.add_subcommand("dead", "Dead letters: list, show, retry, purge");
  auto* dlist = verb("list", tobus::StateVerb::dead_list, "One line per dead letter", dead);
  dlist->add_flag("--json", o.json, json_help);
  auto* show = verb("show", tobus::StateVerb::dead_show, "A dead letter in full (exit 1: not found)", dead);
  show->add_option("ID", o.name, "Its stream entry id or its message id")->required();
  show->add_flag("--json", o.json, json_help);
  auto* retry = verb("retry", tobus::StateVerb::dead_retry, "Send dead letters to the bus again", dead);
  auto* id = retry->add_option("ID", o.name, "Its stream entry id or its message id");
  retry->add_flag("--all", o.all, "Retry every dead letter")->excludes(id);
  retry->add_option("--to", o.to, "Send along this route instead")->type_name("ROUTE");
  auto* purge = verb("purge", tobus::StateVerb::dead_purge, "Delete dead letters; print how many", dead);
  tobus::add_duration_option(*purge, "--older-than", [&o](tobus::Millis d) { o.older_than = d; },
                             "Only those dead for longer than this");
  dead->require_subcommand(1);

  auto* doctor = verb("doctor", tobus::StateVerb::doctor,
                      "Check the Redis the programs would use (exit 1: something is wrong)");
  doctor->add_flag("--json", o.json, "Print one JSON object with every check");
  tobus::add_duration_option(*doctor, "--claim-after", [&o](tobus::Millis d) { o.claim_after = d; },
                             "The --claim-after the bus and modules use (default: 15s); pending twice "
                             "that long is stuck");
  tobus::add_duration_option(*doctor, "--dead-since", [&o](tobus::Millis d) { o.dead_since = d; },
                             "Dead letters younger than this are new: the stream grows (default: 1h)");
  doctor->add_flag("--strict", o.strict, "Warnings exit 1 too");
  auto* acl = verb("acl", tobus::StateVerb::acl, "Print the Redis ACL rules of a role (no Redis needed)");
  acl->add_option("ROLE", o.role, "bus, module, sender, watcher or admin")
      ->required()
      ->check(CLI::IsMember({"bus", "module", "sender", "watcher", "admin"}));
  acl->add_option("NAME", o.name, "The module (role module only)");
  acl->add_option("--type", o.types, "A type the module joins (repeatable)")->type_name("TYPE");
  acl->add_option("--user", o.user, "The Redis user (default: NAMESPACE-ROLE, NAMESPACE-module-NAME)")
      ->type_name("TEXT");
  acl->add_option("--password-file", o.password_file,
                  "The user's password, first line (its SHA-256 is printed; without it the user is off)")
      ->type_name("PATH");
  acl->add_flag("--aclfile", o.aclfile, "Print a line of an aclfile instead of ACL SETUSER");
  app.require_subcommand(1);
  // The commands are listed with their options in the footer; CLI11's own list would repeat them.
  for (auto* sub : app.get_subcommands([](const CLI::App*) { return true; })) sub->group("");
  app.footer(tobus::commands_help(app));

  return program.run(argc, argv, [&] {
    o.report = program.reporter();
    if (o.verb == tobus::StateVerb::acl) return tobus::run_acl(program.keys(), o, STDOUT_FILENO);
    // --names serves shell completions: no waiting for a bus that may be starting.
    return tobus::run_state(program.redis_address(!o.names_only && o.verb != tobus::StateVerb::doctor), program.keys(), o, STDOUT_FILENO);
  });
}
