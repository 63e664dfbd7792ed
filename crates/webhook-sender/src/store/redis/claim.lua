-- Leases up to `limit` due chain heads (and heads whose lease ran out), fairly across
-- endpoints, into this node's consumer of the ready stream.
-- ARGV: prefix, consumer, now (ms), lease end (ms), limit, orphaned after (ms, Redis
-- clock; 0 = never), known-endpoints set key ('' = no filter), known TTL (ms),
-- override count, then (endpoint, cap) pairs.
local consumer = ARGV[2]
local now_s = ARGV[3]
local now = tonumber(now_s)
local lease_end = ARGV[4]
local limit = tonumber(ARGV[5])
local orphaned_after = tonumber(ARGV[6])
local known = ARGV[7]
local overrides = {}
for i = 10, 9 + 2 * tonumber(ARGV[9]), 2 do
  overrides[ARGV[i]] = tonumber(ARGV[i + 1])
end

if redis.call('EXISTS', STREAM) == 0 then
  redis.call('XGROUP', 'CREATE', STREAM, GROUP, '$', 'MKSTREAM')
end
-- Only endpoints this node has loaded (when it keeps such a set and the set survives).
local filter = known ~= '' and redis.call('EXISTS', known) == 1
if filter then
  redis.call('PEXPIRE', known, ARGV[8])
end

-- Safety net on the Redis clock: an entry idle in the pending list for far longer than
-- any lease belongs to a dead node whose clock ran ahead; its lease ends now.
if orphaned_after > 0 then
  local cursor = redis.call('GET', key('orphan-cursor')) or '0-0'
  local found = redis.call('XAUTOCLAIM', STREAM, GROUP, consumer, orphaned_after, cursor, 'COUNT', 64)
  if found[1] ~= cursor then
    redis.call('SET', key('orphan-cursor'), found[1])
  end
  for _, entry in ipairs(found[2]) do
    local sid, fields = entry[1], entry[2]
    local id = fields and fields[2]
    local f = id and redis.call('HMGET', key('d:' .. id), 'st', 'sid', 'ep') or {}
    if f[1] == 'in_flight' and f[2] == sid then
      redis.call('ZADD', key('leases:' .. f[3]), now, id)
      redis.call('HSET', key('d:' .. id), 'due', now_s)
      refresh(f[3])
    elseif sid then
      drop_entry(sid)
    end
  end
end

local claimed = {}
local fresh = {}
local cut_short = false
local endpoints = redis.call('ZRANGEBYSCORE', key('due'), '-inf', now)
for _, ep in ipairs(endpoints) do
  local left = limit - #claimed
  if left <= 0 then
    cut_short = true
    break
  end
  local cfg = redis.call('HMGET', key('ep:' .. ep), 'cap', 'on')
  local cap = tonumber(cfg[1])
  if cap and cfg[2] == '1' and (not filter or redis.call('SISMEMBER', known, ep) == 1) then
    local o = overrides[ep]
    if o and o < cap then
      cap = o
    end
    local busy = redis.call('ZCOUNT', key('leases:' .. ep), '(' .. now_s, '+inf')
    local take = math.min(cap - busy, left)
    if take > 0 then
      local pending = redis.call('ZRANGEBYSCORE', key('sched:' .. ep), '-inf', now, 'WITHSCORES', 'LIMIT', 0, take)
      local expired = redis.call('ZRANGEBYSCORE', key('leases:' .. ep), '-inf', now, 'WITHSCORES', 'LIMIT', 0, take)
      local i, j, n = 1, 1, 0
      -- Merge both by (due, id), as one index of heads would order them.
      while n < take and (pending[i] or expired[j]) do
        local from_pending
        if not expired[j] then
          from_pending = true
        elseif not pending[i] then
          from_pending = false
        else
          local ps, es = tonumber(pending[i + 1]), tonumber(expired[j + 1])
          from_pending = ps < es or (ps == es and pending[i] < expired[j])
        end
        local id
        if from_pending then
          id = pending[i]
          i = i + 2
          redis.call('ZREM', key('sched:' .. ep), id)
          fresh[#fresh + 1] = id
        else
          id = expired[j]
          j = j + 2
          -- Take the dead (or slow) holder's pending entry over.
          local sid = redis.call('HGET', key('d:' .. id), 'sid')
          local moved = sid and redis.call('XCLAIM', STREAM, GROUP, consumer, 0, sid) or {}
          if #moved == 0 then
            if sid then
              redis.call('XDEL', STREAM, sid)
            end
            fresh[#fresh + 1] = id
          end
        end
        local token = redis.call('INCR', key('lease-seq'))
        redis.call('HSET', key('d:' .. id), 'st', 'in_flight', 'due', lease_end, 'lease', token)
        redis.call('ZADD', key('leases:' .. ep), lease_end, id)
        claimed[#claimed + 1] = { id, token }
        n = n + 1
      end
      refresh(ep)
    end
  end
end

-- New leases get a stream entry, read at once into this node's consumer: a pending entry
-- is a lease, visible with XPENDING.
if #fresh > 0 then
  local ours = {}
  for _, id in ipairs(fresh) do
    local sid = redis.call('XADD', STREAM, '*', 'd', id)
    redis.call('HSET', key('d:' .. id), 'sid', sid)
    ours[sid] = true
  end
  local read = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'STREAMS', STREAM, '>')
  for _, stream in ipairs(read or {}) do
    for _, entry in ipairs(stream[2]) do
      if not ours[entry[1]] then
        -- Left behind by a script that failed half-way: nobody's lease.
        drop_entry(entry[1])
      end
    end
  end
end

local out = {}
for _, c in ipairs(claimed) do
  local f = redis.call('HMGET', key('d:' .. c[1]), 'rec', 'seq', 'round', 'att', 'mk')
  -- The payload is the message's: one copy however many endpoints it fans out to, its
  -- body raw and its domain (absent when none) beside the record.
  local body, dom = false, false
  if f[5] then
    local m = redis.call('HMGET', key('m:' .. f[5]), 'body', 'dom')
    body, dom = m[1], m[2]
  end
  out[#out + 1] = { c[1], f[1], f[2], c[2], f[3], f[4], body, dom }
end
local next_due = false
if cut_short or #claimed >= limit then
  next_due = now_s
else
  local r = redis.call('ZRANGEBYSCORE', key('due'), '(' .. now_s, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if r[2] then
    next_due = r[2]
  end
end
return { next_due, redis.call('GET', key('open')) or '0', out }
