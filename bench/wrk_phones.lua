-- Requests from a spread of phones: every request carries an X-Forwarded-For address of its own,
-- as the ingress in front of the broker would add, so the per-address rate limits apply as
-- shipped (the harness starts the broker trusting loopback as its proxy).
--
--   wrk -t2 -c32 -d20s -s bench/wrk_phones.lua URL
--
-- Addresses run in turn through 10.0.0.0/8 from a random start, each thread in its own block of
-- 2^20, so no address comes back within a run (2^20 requests a thread), let alone within the
-- limits' windows. Each request stands for a different phone: a real phone refreshes every few
-- minutes, where this load rotates each token family many times a second.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "wrk_report.lua")

local next_id = 0
math.randomseed(os.time())
local start = math.random(0, 2 ^ 24 - 1)

-- Run in wrk's main state: `id` and `first` become globals of each thread's own state.
function setup(thread)
  thread:set("id", next_id)
  thread:set("first", start)
  next_id = next_id + 1
end

local sent = 0

function phone_address()
  local n = (first + id * 2 ^ 20 + sent) % 2 ^ 24
  sent = sent + 1
  return string.format("10.%d.%d.%d", math.floor(n / 65536), math.floor(n / 256) % 256, n % 256)
end

function request()
  wrk.headers["X-Forwarded-For"] = phone_address()
  return wrk.format()
end
