-- Refresh-token rotation under wrk: every request spends a refresh token and the response's new
-- one goes back into the thread's pool, so each family is rotated again and again. Each request
-- comes from a phone address of its own (bench/wrk_phones.lua).
--
--   wrk -t2 -c32 -d20s -s bench/wrk_refresh.lua URL -- TOKENS_FILE THREADS
--
-- TOKENS_FILE holds one refresh token per line (at least one per connection); thread i takes
-- lines i, i+THREADS, ... Add `-H "Authorization: Basic ..."` for a token endpoint that wants
-- client authentication (the peer). A response without a new token loses that family: it shows
-- as a non-2xx answer in the report.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "wrk_phones.lua")

local tokens = {}

function init(args)
  local path, threads = args[1], tonumber(args[2])
  local line_number = 0
  for line in io.lines(path) do
    if line_number % threads == id and line ~= "" then
      table.insert(tokens, line)
    end
    line_number = line_number + 1
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  local token = table.remove(tokens) or "pool-empty"
  wrk.headers["X-Forwarded-For"] = phone_address()
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  if status == 200 then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then
      table.insert(tokens, token)
    end
  end
end
