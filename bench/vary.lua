-- wrk script: POST examples/test-alert.json with a new groupKey and new fingerprints on every
-- request, so rcwebhook's de-duplication does not skip the work.
local f = io.open(os.getenv("RCWEBHOOK_BENCH_BODY"), "r")
local template = f:read("*a")
f:close()
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

-- Each of wrk's threads runs this script in its own Lua state, with the same random numbers: the
-- thread's own number keeps their bodies apart (without it every body came twice, and the second
-- was only an answer from the ledger).
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

request = function()
  counter = counter + 1
  local id = tostring(thread_number or 0) .. "-" .. tostring(math.random(1, 1000000000)) .. "-" .. counter
  local body = template:gsub('"groupKey": "', '"groupKey": "bench-' .. id .. '-')
  body = body:gsub('"fingerprint": "', '"fingerprint": "' .. id .. '-')
  return wrk.format(nil, "/webhook", nil, body)
end
