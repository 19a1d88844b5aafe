-- bench/orders.lua - wrk: POST /api/orders as a signed-in buyer, every request a
-- ticket nobody ordered yet.
--   wrk ... -s bench/orders.lua URL -- COOKIE FIRST [THREADS]
-- COOKIE is "tb_session=..." from POST /api/users/signin (bench/run signs in
-- with curl); with THREADS wrk threads (default 2), thread t orders tickets
-- FIRST + t, FIRST + t + THREADS, ... so no two requests of a run name the
-- same ticket.  done() prints how many answers were not a success (wrk's own
-- count of non-2xx/3xx statuses: every refusal of this route is a 4xx or 5xx,
-- its only success a 201).  No response() callback, so wrk does not hand
-- every reply to Lua.
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local cookie, first, stride, n = "", 0, 2, 0
function init(args)
  cookie = args[1]
  first = tonumber(args[2]) or 0
  stride = tonumber(args[3]) or 2
end

function request()
  local i = first + tid + n * stride
  n = n + 1
  return wrk.format("POST", "/api/orders",
    { ["Content-Type"] = "application/json", ["Cookie"] = cookie },
    string.format('{"ticketId":"00000002-0000-7000-8000-%012x"}', i))
end

function done(summary, latency, requests)
  io.write(string.format("NOT_CREATED %d\n", summary.errors.status))
end
