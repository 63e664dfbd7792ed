-- Ends a lease. Returns 0 when the delivery is not in flight under that lease.
-- ARGV: prefix, id, lease, outcome ('delivered', 'failed', 'retry', 'release'),
-- at (ms: finished at for delivered and failed, due at for retry and release),
-- attempt (JSON, or '' for release).
local id, lease, outcome, at, attempt = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local d = key('d:' .. id)
local f = redis.call('HMGET', d, 'st', 'lease', 'ep', 'rk', 'sid', 'round', 'att')
if f[1] ~= 'in_flight' or f[2] ~= lease then
  return 0
end
local ep = f[3]
redis.call('ZREM', key('leases:' .. ep), id)
drop_entry(f[5])
redis.call('HDEL', d, 'sid')
local round, attempts = tonumber(f[6]) or 0, f[7]
if attempt ~= '' then
  round = round + 1
  attempts = append_attempt(attempts, attempt)
end
if outcome == 'delivered' or outcome == 'failed' then
  redis.call('HSET', d, 'st', outcome, 'lease', 0, 'round', round, 'att', attempts, 'fin', at)
  -- Leave the chain; the next one becomes the head.
  local chain = key('chain:' .. ep .. ':' .. f[4])
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
  redis.call('DECR', key('open'))
  if outcome == 'failed' then
    redis.call('ZADD', key('failed:' .. ep), at, id)
  else
    redis.call('ZADD', key('delivered'), at, id)
  end
else
  -- Keep the head of the chain, due again at `at`.
  redis.call('HSET', d, 'st', 'pending', 'lease', 0, 'round', round, 'att', attempts, 'due', at)
  redis.call('ZADD', key('sched:' .. ep), at, id)
end
refresh(ep)
return 1
