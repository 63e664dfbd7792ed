-- Puts a failed delivery back at the end of its chain with a fresh retry round.
-- ARGV: prefix, id, now (ms), its finish time as read (the entries below were computed
-- from it), then the index blocks to remove and to add. Returns 0 when the delivery is not
-- failed with that finish time any more.
local id, now, fin = ARGV[2], ARGV[3], ARGV[4]
local d = key('d:' .. id)
local f = redis.call('HMGET', d, 'st', 'ep', 'rk', 'fin')
if f[1] ~= 'failed' or (f[4] or '') ~= fin then
  return 0
end
local ep = f[2]
redis.call('HSET', d, 'st', 'pending', 'due', now, 'round', 0, 'lease', 0, 'seq', redis.call('INCR', key('seq')))
redis.call('HDEL', d, 'fin')
if chain_push(ep, f[3], id, now) then
  refresh(ep)
end
redis.call('INCR', key('open'))
index_add(index_remove(5))
return 1
