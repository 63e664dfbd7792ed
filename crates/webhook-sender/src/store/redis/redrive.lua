-- Puts a failed delivery back at the end of its chain with a fresh retry round.
-- ARGV: prefix, id, now (ms). Returns 0 when the delivery is not failed.
local id, now = ARGV[2], ARGV[3]
local d = key('d:' .. id)
local f = redis.call('HMGET', d, 'st', 'ep', 'rk')
if f[1] ~= 'failed' then
  return 0
end
local ep = f[2]
redis.call('ZREM', key('failed:' .. ep), id)
redis.call('HSET', d, 'st', 'pending', 'due', now, 'round', 0, 'lease', 0, 'seq', redis.call('INCR', key('seq')))
redis.call('HDEL', d, 'fin')
if redis.call('RPUSH', key('chain:' .. ep .. ':' .. f[3]), id) == 1 then
  redis.call('ZADD', key('sched:' .. ep), now, id)
  refresh(ep)
end
redis.call('INCR', key('open'))
return 1
