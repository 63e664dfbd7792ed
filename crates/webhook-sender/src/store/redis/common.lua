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
  if attempts == nil or attempts == false or attempts == '' or attempts == '[]' then
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

-- Index entries arrive as blocks in ARGV, computed by the engine (store::index) and
-- grouped by member: at `i` a count g of groups, then per group its member, a count k
-- and k set names. Each index set is a sorted set of score 0 under `ix:` + the set name,
-- read with ZRANGE ... BYLEX. Each function returns the index after the block.
local function index_block(i, command)
  local g = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, g do
    local member, k = ARGV[i], tonumber(ARGV[i + 1])
    if command then
      for j = i + 2, i + 1 + k do
        if command == 'ZADD' then
          redis.call('ZADD', key('ix:' .. ARGV[j]), 0, member)
        else
          redis.call('ZREM', key('ix:' .. ARGV[j]), member)
        end
      end
    end
    i = i + 2 + k
  end
  return i
end

local function block_end(i)
  return index_block(i, nil)
end

local function index_remove(i)
  return index_block(i, 'ZREM')
end

local function index_add(i)
  return index_block(i, 'ZADD')
end

-- Appends an open delivery to its chain. The first of a chain is its head, scheduled at
-- `due`; returns whether it is (the caller refreshes the endpoint).
local function chain_push(ep, rk, id, due)
  if redis.call('RPUSH', key('chain:' .. ep .. ':' .. rk), id) == 1 then
    redis.call('ZADD', key('chains:' .. ep), 0, rk)
    redis.call('ZADD', key('sched:' .. ep), due, id)
    return true
  end
  return false
end

-- Takes a delivery out of its chain (the caller has taken it out of the scheduled and
-- lease sets); when it was the head, the next one becomes the head. The caller refreshes
-- the endpoint.
local function chain_remove(ep, rk, id)
  local chain = key('chain:' .. ep .. ':' .. rk)
  if redis.call('LINDEX', chain, 0) == id then
    redis.call('LPOP', chain)
    local next_id = redis.call('LINDEX', chain, 0)
    if next_id then
      local next_due = redis.call('HGET', key('d:' .. next_id), 'due')
      if next_due then
        redis.call('ZADD', key('sched:' .. ep), next_due, next_id)
      end
    end
  else
    redis.call('LREM', chain, 1, id)
  end
  if redis.call('EXISTS', chain) == 0 then
    redis.call('ZREM', key('chains:' .. ep), rk)
  end
end
