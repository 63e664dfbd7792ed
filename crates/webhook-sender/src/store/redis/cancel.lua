-- Cancels open deliveries of one endpoint (pending or in flight: the lease ends and its
-- stream entry goes). Deliveries that are not open any more are skipped. Returns how many
-- were cancelled.
-- ARGV: prefix, endpoint, reason, now (ms), count, then per delivery: id, the index
-- blocks to remove and to add.
local ep, reason, now = ARGV[2], ARGV[3], ARGV[4]
local n = tonumber(ARGV[5])
local i = 6
local cancelled = 0
for _ = 1, n do
  local id = ARGV[i]
  local d = key('d:' .. id)
  local f = redis.call('HMGET', d, 'st', 'ep', 'rk', 'sid')
  if (f[1] == 'pending' or f[1] == 'in_flight') and f[2] == ep then
    redis.call('ZREM', key('sched:' .. ep), id)
    redis.call('ZREM', key('leases:' .. ep), id)
    drop_entry(f[4])
    chain_remove(ep, f[3], id)
    redis.call('HSET', d, 'st', 'cancelled', 'lease', 0, 'fin', now, 'why', reason)
    redis.call('HDEL', d, 'sid')
    redis.call('DECR', key('open'))
    i = index_add(index_remove(i + 1))
    cancelled = cancelled + 1
  else
    i = block_end(block_end(i + 1))
  end
end
refresh(ep)
return cancelled
