// The server's log: one line per event on stderr ("onevit serve: ..."), whole
// lines even when several threads log at once.
#pragma once

#include <string>

namespace onevit::serve {

void log_line(const std::string& message);

}  // namespace onevit::serve
