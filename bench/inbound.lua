-- wrk script for bench/inbound.py: cycle through pre-built Postmark payloads, splicing in the
-- per-request ids (see bench/payloads.py), count non-200 responses, keep the first few bodies,
-- and print one JSON line at the end.
--
-- wrk -t T -c C -d D -s bench/inbound.lua URL -- TEMPLATES_FILE TAG PM_PREFIX OFFSET AUTH_HEADER
-- Request numbers: OFFSET + thread_index + k * T (unique across threads; ids never repeat in a run).

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local templates, n = {}, 0
local tag, pm_prefix, step

local function load(path)
  local f = assert(io.open(path, "rb"))
  for line in f:lines() do
    local tab = line:find("\t", 1, true)
    local back = tonumber(line:sub(1, tab - 1))
    local segs, kinds, pos = {}, {}, tab + 1
    while true do
      local at = line:find("\1", pos, true)
      local chunk = line:sub(pos, (at or 0) - 1)
      if #segs == 0 then
        segs[1] = chunk
      else
        kinds[#segs + 1] = chunk:sub(1, 1)
        segs[#segs + 1] = chunk:sub(2)
      end
      if not at then break end
      pos = at + 1
    end
    n = n + 1
    templates[n] = { back = back, segs = segs, kinds = kinds }
  end
  f:close()
end

function init(args)
  load(args[1])
  tag, pm_prefix = args[2], args[3]
  step = tonumber(args[6])
  counter = tonumber(args[4]) + tid   -- globals, read back by done()
  bad = 0
  errs = ""
  wrk.method = "POST"
  wrk.path = "/tickets/inbound"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = args[5]
end

function request()
  local i = counter
  counter = counter + step
  local t = templates[(i % n) + 1]
  local segs, kinds = t.segs, t.kinds
  local buf = { segs[1] }
  for j = 2, #segs do
    local kind = kinds[j]
    if kind == "P" then
      buf[#buf + 1] = pm_prefix .. string.format("%012d", i)
    elseif kind == "M" then
      buf[#buf + 1] = tag .. "-" .. string.format("%d", i)
    else
      buf[#buf + 1] = tag .. "-" .. string.format("%d", i - t.back)
    end
    buf[#buf + 1] = segs[j]
  end
  return wrk.format(nil, nil, nil, table.concat(buf))
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    if bad <= 5 then
      errs = errs .. tostring(status) .. " " .. string.sub(body or "", 1, 600) .. "\30"
    end
  end
end

local function jstr(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function done(summary, latency, requests)
  local non200, max_counter, errors = 0, 0, {}
  for _, thread in ipairs(threads) do
    non200 = non200 + thread:get("bad")
    local c = thread:get("counter")
    if c > max_counter then max_counter = c end
    for e in string.gmatch(thread:get("errs"), "([^\30]*)\30") do
      errors[#errors + 1] = jstr(e)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non200":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"status_errors":%d,"max_counter":%d,' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"error_bodies":[%s]}\n',
    summary.requests, summary.duration, non200, e.connect, e.read, e.write, e.timeout, e.status, max_counter,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean,
    table.concat(errors, ",")))
end
