-- wrk script of the warm-render benchmark (bench/run.sh).
--
-- Sends POST /api/v1/render with the benchmark prompt's body (read from the file named by
-- PS_BODY_FILE, written by bench_seed) and the key in PS_KEY, counts every answer that is
-- not 200, and prints one machine-readable line at the end. The same script drives the
-- bare axum baseline, so both pay the same client-side cost per response.

local key = os.getenv("PS_KEY") or ""
local body_file = os.getenv("PS_BODY_FILE") or ""

local f = io.open(body_file, "r")
if f == nil then
  io.stderr:write("render.lua: cannot open PS_BODY_FILE='" .. body_file .. "'\n")
  os.exit(2)
end
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.path = "/api/v1/render"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key

-- PS_UNIQUE_VAR=customer_name makes every request distinct: the value of that (string)
-- variable gets a per-request number in front, so no two requests (and no two answers) are
-- the same and the server's render answer cache cannot serve any of them.
local unique_var = os.getenv("PS_UNIQUE_VAR") or ""
local unique_prefix, unique_suffix = nil, nil
if unique_var ~= "" then
  local marker = '"' .. unique_var .. '":"'
  local at = string.find(body, marker, 1, true)
  if at == nil then
    io.stderr:write("render.lua: the body has no string variable '" .. unique_var .. "'\n")
    os.exit(2)
  end
  unique_prefix = string.sub(body, 1, at + #marker - 1)
  unique_suffix = string.sub(body, at + #marker)
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  responses = 0
  non200 = 0
  first_bad = ""
end

-- The values also carry the run's start time, so that two runs (a warm-up, then the timed
-- rounds) never send the same value twice.
local run_id = tostring(os.time())
if unique_prefix ~= nil then
  function request()
    counter = counter + 1
    return wrk.format(nil, nil, nil, unique_prefix .. "#" .. run_id .. "-" .. counter .. " " .. unique_suffix)
  end
end

function response(status, headers, body)
  responses = responses + 1
  if status ~= 200 then
    non200 = non200 + 1
    if first_bad == "" then
      first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 200)
    end
  end
end

function done(summary, latency, requests)
  local seen, bad, sample = 0, 0, ""
  for _, t in ipairs(threads) do
    seen = seen + t:get("responses")
    bad = bad + t:get("non200")
    if sample == "" then sample = t:get("first_bad") end
  end
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  io.write(string.format(
    "BENCH requests=%d responses=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non200=%d socket_errors=%d bytes=%d\n",
    summary.requests, seen, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    bad, socket_errors, summary.bytes))
  if bad > 0 then
    io.write("BENCH_FIRST_BAD " .. sample .. "\n")
  end
end
