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
--
-- Every request is the same bytes but for 12 hex digits of the ticket id, so
-- init() builds the request line, headers and the body's first part once
-- (with wrk.format) and request() only appends the digits: wrk, on the same
-- two cores as the server, then spends about a third less CPU per request
-- than with a wrk.format() call per request (which walked the header table
-- every time).
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local head, first, stride, n = "", 0, 2, 0
local BODY_PREFIX = '{"ticketId":"00000002-0000-7000-8000-'
local BODY_SUFFIX = '"}'
local DIGITS = 12

function init(args)
  local cookie = args[1]
  first = tonumber(args[2]) or 0
  stride = tonumber(args[3]) or 2
  -- A whole request for ticket 0, then cut just before its id's last 12 digits.
  local sample = BODY_PREFIX .. string.rep("0", DIGITS) .. BODY_SUFFIX
  local req = wrk.format("POST", "/api/orders",
    { ["Content-Type"] = "application/json", ["Cookie"] = cookie }, sample)
  assert(req:sub(-#sample) == sample, "wrk.format put the body last")
  head = req:sub(1, #req - DIGITS - #BODY_SUFFIX)
end

function request()
  local i = first + tid + n * stride
  n = n + 1
  return string.format("%s%012x%s", head, i, BODY_SUFFIX)
end

function done(summary, latency, requests)
  io.write(string.format("NOT_CREATED %d\n", summary.errors.status))
end
