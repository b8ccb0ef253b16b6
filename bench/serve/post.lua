-- wrk script for onevit serve's benchmarks (bench/serve/serve_bench.py writes its inputs):
--   ONEVIT_REQUESTS=FILE   lines "BODY_FILE HEADER_LENGTH": the request bodies, sent in turn
--                          (HEADER_LENGTH: the Inference-Header-Content-Length, or - for none)
--   ONEVIT_PATH=PATH       the URL path, e.g. /v2/models/deit_tiny/infer
--   ONEVIT_API_KEY=KEY     optional: sent as Authorization: Bearer KEY
-- wrk counts answers other than 2xx/3xx itself ("Non-2xx or 3xx responses").
local requests = {}
local next_request = 1

local function read(path)
  local file = assert(io.open(path, "rb"))
  local data = file:read("*a")
  file:close()
  return data
end

local list = assert(os.getenv("ONEVIT_REQUESTS"), "set ONEVIT_REQUESTS")
local path = assert(os.getenv("ONEVIT_PATH"), "set ONEVIT_PATH")
local key = os.getenv("ONEVIT_API_KEY")
for line in io.lines(list) do
  local body_file, header_length = line:match("^(%S+)%s+(%S+)$")
  local headers = {["Content-Type"] = "application/octet-stream"}
  if header_length ~= "-" then headers["Inference-Header-Content-Length"] = header_length end
  if key and key ~= "" then headers["Authorization"] = "Bearer " .. key end
  requests[#requests + 1] = wrk.format("POST", path, headers, read(body_file))
end

function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
end
