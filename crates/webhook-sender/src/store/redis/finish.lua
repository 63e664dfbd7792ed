-- Ends a lease. Returns 0 when the delivery is not in flight under that lease.
-- ARGV: prefix, id, lease, outcome ('delivered', 'failed', 'retry', 'release'),
-- at (ms: finished at for delivered and failed, due at for retry and release),
-- attempt (JSON, or '' for release), then the index blocks to remove and to add (empty
-- for retry and release: the status group stays open).
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
  chain_remove(ep, f[4], id)
  redis.call('DECR', key('open'))
  index_add(index_remove(7))
else
  -- Keep the head of the chain, due again at `at`.
  redis.call('HSET', d, 'st', 'pending', 'lease', 0, 'round', round, 'att', attempts, 'due', at)
  redis.call('ZADD', key('sched:' .. ep), at, id)
end
refresh(ep)
return 1
