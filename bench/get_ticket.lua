-- bench/get_ticket.lua - wrk: GET /api/tickets/:id over seeded ids.
--   wrk ... -s bench/get_ticket.lua URL -- FIRST COUNT
-- Each thread walks the ids FIRST .. FIRST+COUNT-1 with its own stride, so
-- requests spread over the table instead of hitting one hot row.
local nthreads = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
end

local first, count, k = 0, 1, 0
function init(args)
  first = tonumber(args[1]) or 0
  count = tonumber(args[2]) or 1
  k = (tid or 0) * 7919
end

function request()
  k = k + 104729
  local i = first + (k % count)
  return wrk.format("GET", string.format("/api/tickets/00000002-0000-7000-8000-%012x", i))
end
