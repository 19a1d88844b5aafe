-- bench/orders.lua - wrk: POST /api/orders as a signed-in buyer, every request a
-- ticket nobody ordered yet.
--   wrk ... -s bench/orders.lua URL -- COOKIE FIRST [THREADS]
-- COOKIE is "tb_session=..." from POST /api/users/signin (bench/run signs in
-- with curl); with THREADS wrk threads (default 2), thread t orders tickets
-- FIRST + t, FIRST + t + THREADS, ... so no two requests of a run name the
-- same ticket.  done() prints how many answers
-- were not 201 Created.
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local cookie, first, stride, n = "", 0, 2, 0
bad = 0 -- a global: done() reads it from each thread with thread:get
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

function response(status, headers, body)
  if status ~= 201 then bad = bad + 1 end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get("bad") or 0) end
  io.write(string.format("NOT_CREATED %d\n", total))
end
