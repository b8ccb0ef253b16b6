// `onevit serve` from start to exit: listen (HTTP and gRPC: live at once),
// load the model, plan every batch size, then ready; on SIGTERM/SIGINT not
// ready, stop accepting, answer every accepted request, exit.
#pragma once

#include <string>

#include "onevit/model.hpp"
#include "serve_options.hpp"

namespace onevit::serve {

// Returns the exit status: 0 once every accepted request was answered, 1 if
// some were still open at --shutdown-timeout-s. Throws onevit::Error when it
// cannot start (a port in use, a bad model file, an unreadable key file).
int serve(const ServeOptions& options, const Options& model_options, const std::string& version);

}  // namespace onevit::serve
