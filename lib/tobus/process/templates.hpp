#pragma once
// Handler templates (tobus-module --init NAME --lang sh|python, docs/service.md).

#include <string>

namespace tobus {

// Writes the handler template DIR/NAME (mode 0755) in `lang` (sh or python) and returns its path.
// Throws Error(usage) for a bad name or language, Error(failed) when the file exists (it is never
// overwritten) or cannot be written.
std::string write_template(const std::string& dir, const std::string& name, const std::string& lang);

}  // namespace tobus
