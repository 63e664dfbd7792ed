-- Adds the deliveries of one publish, atomically.
-- ARGV: prefix, then per delivery: id, meta (JSON), endpoint, resource key, due (ms), body.
local added = 0
for i = 2, #ARGV, 6 do
  local id, meta, ep, rk, due, body = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local seq = redis.call('INCR', key('seq'))
  redis.call('HSET', key('d:' .. id), 'meta', meta, 'ep', ep, 'rk', rk, 'seq', seq,
    'st', 'pending', 'due', due, 'lease', 0, 'round', 0, 'att', '[]', 'body', body)
  -- The first of its chain is its head: due as soon as its time comes.
  if redis.call('RPUSH', key('chain:' .. ep .. ':' .. rk), id) == 1 then
    redis.call('ZADD', key('sched:' .. ep), due, id)
    refresh(ep)
  end
  added = added + 1
end
redis.call('INCRBY', key('open'), added)
return added
