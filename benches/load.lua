-- benches/load.lua: wrk's script for benches/load.sh. Each request is one signed Slack slash command,
-- read from the file named by LOAD_REQUESTS (one "timestamp<TAB>signature<TAB>body" a line, made by
-- load.sh with Slack's v0 HMAC-SHA256): wrk has no HMAC of its own, and every command needs its own
-- trigger_id (a repeated one is a duplicate, answered without a write, which would flatter the figure).
-- Each wrk thread takes every n-th line, so no two threads send the same command.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local count = tonumber(os.getenv("LOAD_THREADS") or "2")
  requests = {}
  local i = 0
  for line in io.lines(os.getenv("LOAD_REQUESTS")) do
    if i % count == id then
      local ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", "/slack/commands", {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Slack-Request-Timestamp"] = ts,
        ["X-Slack-Signature"] = sig,
      }, body)
    end
    i = i + 1
  end
  next_request = 0
end

function request()
  next_request = next_request + 1
  if next_request > #requests then
    -- Out of fresh commands: the rest of the run would be duplicates; load.sh sizes the file so
    -- this does not happen, and reports non-2xx answers if it did.
    next_request = 1
  end
  return requests[next_request]
end
