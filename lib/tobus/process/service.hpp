#pragma once
// The service framework around a per-message handler (docs/service.md), one include for its users.
// Each concern has its own header and source file in lib/tobus/process/:
//
//   service_options  ServiceOptions (tobus-module's --pool, --workdir, callbacks, limits), checks
//   pool             the service pool: pick() the executable a message's `service` header names
//   workdir          per-job work dirs: their names and listings (and, internally, their safety)
//   job_run          JobRun, one job: work dir, --before/--on-change/--after, limits, keep policy;
//                    how the module drives it is at the top of job_run.hpp
//   templates        handler templates (--init, --lang)
//   once             a local run of one message (--once)
//
// service_detail.hpp (not installed) holds what their sources share.

#include "tobus/process/job_run.hpp"
#include "tobus/process/once.hpp"
#include "tobus/process/pool.hpp"
#include "tobus/process/service_options.hpp"
#include "tobus/process/templates.hpp"
#include "tobus/process/workdir.hpp"
