-- wrk script: POST examples/test-alert.json with a new groupKey and new fingerprints on every
-- request, so rcwebhook's de-duplication does not skip the work.
local f = io.open(os.getenv("RCWEBHOOK_BENCH_BODY"), "r")
local template = f:read("*a")
f:close()
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  counter = counter + 1
  local id = tostring(math.random(1, 1000000000)) .. "-" .. counter
  local body = template:gsub('"groupKey": "', '"groupKey": "bench-' .. id .. '-')
  body = body:gsub('"fingerprint": "', '"fingerprint": "' .. id .. '-')
  return wrk.format(nil, "/webhook", nil, body)
end
