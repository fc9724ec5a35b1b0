-- wrk script for bench/callbacks.py: replays pre-encrypted WeCom callbacks.
--
--   wrk -t T -c C -d <safety> --timeout 30s --latency -s bench/callbacks.lua URL -- DATA MODE SECONDS T [RATE]
--
-- DATA     file of "PATH?QUERY<TAB>BODY" lines (one signed, encrypted callback each)
-- MODE     "once":  every line is sent exactly once (thread t sends lines t, t+T, t+2T, ...), so
--                   every request is a distinct message and the archive can be compared with acks;
--          "cycle": lines are reused (for the bare ceiling server, which stores nothing)
-- RATE     (optional) requests per second over all threads, on a fixed schedule (wrk's delay()
--          hook: a thread's k-th request is due at its start + k * T / RATE, however long the answers
--          take, given enough connections); without it every connection sends as fast as answers come
-- SECONDS  how long to send; afterwards (or when a "once" slice runs out) the thread stops sending,
--          waits for every outstanding response, then stops itself. No request is abandoned in
--          flight, so the number of 200s counted here is exactly what the server acknowledged.
--
-- Idle connections: once a thread is draining, request() returns "" (wrk writes nothing and the
-- connection just waits), so nothing is sent that is not counted.
--
-- done() prints one line "BENCH_JSON {...}" with acked / non-200 counts, the measured interval
-- (first request to last response, CLOCK_MONOTONIC via LuaJIT ffi; wrk's own duration also
-- includes the main thread's sleep) and wrk's latency percentiles (microseconds).
-- Each thread writes "BENCH_THREAD_DONE" to stderr when it has drained, so the driver can SIGINT
-- wrk instead of waiting for the -d safety limit.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- main state: setup() numbers the threads, done() aggregates ---------------------------------
local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

-- thread state ------------------------------------------------------------------------------
local reqs = {}
local n = 0
local i = 1
local mode = "once"
local duration = 10
local verified = false
local interval = 0  -- seconds between this thread's requests when paced
local next_due = 0
sent, received, acked, non200 = 0, 0, 0, 0
t_start, t_end = 0, 0
draining, finished = false, false
exhausted = false

function init(args)
  local path = args[1]
  mode = args[2] or "once"
  duration = tonumber(args[3] or "10")
  local nthreads = tonumber(args[4] or "1")
  local rate = tonumber(args[5] or "0")
  if rate > 0 then
    interval = nthreads / rate
  else
    delay = nil  -- unpaced: wrk then never asks for a delay (it looks after init)
  end
  local me = tid or 0
  local headers = { ["Content-Type"] = "text/xml" }
  local line_no = 0
  for line in io.lines(path) do
    if line_no % nthreads == me then
      local tab = string.find(line, "\t", 1, true)
      n = n + 1
      reqs[n] = wrk.format("POST", string.sub(line, 1, tab - 1), headers, string.sub(line, tab + 1))
    end
    line_no = line_no + 1
  end
  if n == 0 then
    io.stderr:write("callbacks.lua: no requests for thread " .. me .. "\n")
    os.exit(2)
  end
end

local function finish()
  if finished then return end
  finished = true
  if t_end == 0 then t_end = now() end
  io.stderr:write("BENCH_THREAD_DONE\n")
  io.stderr:flush()
  wrk.thread:stop()
end

local function idle()
  draining = true
  if received == sent then finish() end
  return ""
end

function delay()
  local t = now()
  if next_due == 0 then next_due = t end
  local wait = next_due - t
  next_due = next_due + interval
  if wait <= 0 then return 0 end
  return math.floor(wait * 1000 + 0.5)
end

function request()
  -- wrk 4.x calls request() once on thread 0 before the threads run, only to check that it is a
  -- valid HTTP request (script_verify_request); that copy is never sent, so do not consume it.
  if tid == 0 and not verified then
    verified = true
    return reqs[1]
  end
  if draining then return idle() end
  local t = now()
  if t_start == 0 then t_start = t end
  if t - t_start >= duration then return idle() end
  if i > n then
    if mode == "cycle" then
      i = 1
    else
      exhausted = true
      return idle()
    end
  end
  local r = reqs[i]
  i = i + 1
  sent = sent + 1
  return r
end

function response(status, headers, body)
  received = received + 1
  if status == 200 then acked = acked + 1 else non200 = non200 + 1 end
  t_end = now()  -- the last response (also right for a thread that never drains)
  if draining and received == sent then finish() end
end

-- main state again ----------------------------------------------------------------------------
function done(summary, latency, requests)
  local tot = { sent = 0, received = 0, acked = 0, non200 = 0 }
  local t0, t1 = nil, nil
  local all_finished, any_exhausted = true, false
  for _, thread in ipairs(threads) do
    for k, _ in pairs(tot) do tot[k] = tot[k] + (thread:get(k) or 0) end
    local s, e = thread:get("t_start"), thread:get("t_end")
    if s and s > 0 and (t0 == nil or s < t0) then t0 = s end
    if e and e > 0 and (t1 == nil or e > t1) then t1 = e end
    if not thread:get("finished") then all_finished = false end
    if thread:get("exhausted") then any_exhausted = true end
  end
  local elapsed = (t0 and t1) and (t1 - t0) or (summary.duration / 1e6)
  local e = summary.errors
  local out = string.format(
    '{"sent":%d,"received":%d,"acked":%d,"non200":%d,"elapsed_s":%.6f,"rate":%.1f,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"wrk_requests":%d,"wrk_duration_s":%.3f,"drained":%s,"exhausted":%s,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}',
    tot.sent, tot.received, tot.acked, tot.non200, elapsed, elapsed > 0 and tot.acked / elapsed or 0,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean,
    summary.requests, summary.duration / 1e6, tostring(all_finished), tostring(any_exhausted),
    e.connect, e.read, e.write, e.status, e.timeout)
  io.write("BENCH_JSON " .. out .. "\n")
  io.flush()
end
