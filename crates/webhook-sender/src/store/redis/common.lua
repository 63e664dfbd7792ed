-- Shared by every script (prepended to it). ARGV[1] is the key prefix; every other key
-- name is built from it, so the scripts run on standalone Redis (not Redis Cluster).
local P = ARGV[1]
local STREAM = P .. 'ready'
local GROUP = 'senders'

local function key(name)
  return P .. name
end

-- Keeps `due` (endpoints by their earliest pending chain head or lease end) in step
-- with one endpoint.
local function refresh(ep)
  local s = redis.call('ZRANGE', key('sched:' .. ep), 0, 0, 'WITHSCORES')
  local l = redis.call('ZRANGE', key('leases:' .. ep), 0, 0, 'WITHSCORES')
  local earliest = nil
  if s[2] then
    earliest = tonumber(s[2])
  end
  if l[2] and (earliest == nil or tonumber(l[2]) < earliest) then
    earliest = tonumber(l[2])
  end
  if earliest then
    redis.call('ZADD', key('due'), earliest, ep)
  else
    redis.call('ZREM', key('due'), ep)
  end
end

-- Appends one attempt (a JSON object written by the engine) to a JSON array, without
-- decoding either.
local function append_attempt(attempts, attempt)
  if attempts == nil or attempts == '' or attempts == '[]' then
    return '[' .. attempt .. ']'
  end
  return string.sub(attempts, 1, -2) .. ',' .. attempt .. ']'
end

-- Ends a delivery's stream entry: acknowledged (out of the pending entries) and deleted.
local function drop_entry(sid)
  if sid then
    redis.call('XACK', STREAM, GROUP, sid)
    redis.call('XDEL', STREAM, sid)
  end
end
