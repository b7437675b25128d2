-- wrk script: POST the body in $BENCH_BODY_FILE, count responses by status in every thread,
-- and print one line "BENCH {json}" with the totals and latency percentiles when done.
-- With BENCH_NUMBERED=1 the body is a template: each request fills in "@@NUMBER@@" with a
-- number unique across threads (payloads.NUMBER), so every request is a new delivery.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.body = file:read("*a")
file:close()
local template = wrk.body

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

function init(args)
  statuses = {}
  counter = 0
end

if os.getenv("BENCH_NUMBERED") == "1" then
  function request()
    counter = counter + 1
    local number = string.format("%012d", thread_number * 1e10 + counter)
    return wrk.format(nil, nil, nil, (template:gsub("@@NUMBER@@", number)))
  end
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      totals[status] = (totals[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(totals) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"seconds":%.6f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"errors":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3,
    e.connect + e.read + e.write + e.timeout, table.concat(parts, ",")))
end
